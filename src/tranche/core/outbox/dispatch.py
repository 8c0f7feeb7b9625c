"""One relay round: publish the claimed rows, decide each row's fate, write it down.

:func:`publish_round` talks only to the broker (so the SQLite relay can run it
outside any transaction); :func:`record_round` writes the outcome and runs the
after-send hooks in the caller's transaction. A row the broker acknowledged
becomes SENT; a row the broker could not be reached for is left untouched (no
attempt is charged: an outage must not kill events); a rejected row is charged
an attempt and retried after a backoff, or — attempts exhausted, or never
sendable — published to ``<topic>.dlq`` and marked DEAD.

A topic may have a *render* function: it rewrites the stored value just before the
record goes to the producer, given the instant of the hand-over, so an event can
carry the time it was sent (the value is fixed at commit, the send time is not).
The same instant reaches the after-send hooks (:attr:`SentEvent.sent_at`), so a hook
that writes it to a business row writes exactly what the event says. Dead letters
carry the stored value: it is what failed, and what a replay sends through the render
again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.delivery import next_due
from tranche.core.logging import get_logger
from tranche.core.outbox import store
from tranche.core.outbox.enqueue import EVENT_ID_HEADER, decode_headers
from tranche.core.outbox.publisher import Delivered, Outcome, Publisher, Record, record_size
from tranche.core.outbox.settings import OutboxSettings
from tranche.core.outbox.store import Row
from tranche.core.resilience import Backoff

__all__ = [
    "NOT_YET",
    "Beside",
    "Hook",
    "Render",
    "RoundResult",
    "SentEvent",
    "dlq_record",
    "has_writes",
    "publish_round",
    "record_round",
]

log = get_logger(__name__)

DLQ_SUFFIX = ".dlq"


class SentEvent(NamedTuple):
    """An event the broker acknowledged, as the after-send hooks see it.

    A tuple, not a frozen dataclass: a round builds one per event, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 3.6 against 0.6 µs."""

    event_id: str
    topic: str
    key: str | None
    value: bytes
    headers: dict[str, bytes]
    partition: int
    offset: int
    #: When the relay handed the event to the producer (what a render stamped into it).
    sent_at: datetime


Hook = Callable[[AsyncSession, Sequence[SentEvent]], Awaitable[None]]
#: Work done while a round's acks are awaited, given the events about to be sent to
#: hooked topics (``partition``/``offset`` :data:`NOT_YET`); see ``ahead``.
Beside = Callable[[Sequence[SentEvent]], Awaitable[None]]
#: ``partition`` and ``offset`` of an event given to a hook before its ack.
NOT_YET = -1
#: ``(stored value, hand-over instant) -> value to send``; raising makes the event dead.
Render = Callable[[bytes, datetime], bytes]


@dataclass
class RoundResult:
    #: The delivered rows of topics with hooks, their records and acks; the hooks'
    #: events are built from them only for hooks still to run (see ``_sent_events``).
    delivered: list[tuple[Row, Record, Delivered]] = field(default_factory=list)
    sent_seqs: list[int] = field(default_factory=list)
    sent_ids: list[str] = field(default_factory=list)
    sent_topics: list[str] = field(default_factory=list)
    #: Rows the broker could not be reached for: left as they were.
    unsent_seqs: list[int] = field(default_factory=list)
    retry: list[dict[str, Any]] = field(default_factory=list)
    dead: list[dict[str, Any]] = field(default_factory=list)
    dead_topics: list[str] = field(default_factory=list)
    failed_topics: list[str] = field(default_factory=list)
    retried_topics: list[str] = field(default_factory=list)
    hook_failed_topics: list[str] = field(default_factory=list)
    unavailable: str | None = None
    broker_answered: bool = False
    #: The hand-over instant of the round (what renders stamped, ``SentEvent.sent_at``).
    handed_at: datetime | None = None


@lru_cache(maxsize=256)
def _headers(text: str) -> tuple[tuple[str, bytes], ...]:
    """Decoded once per distinct header text: a service's events mostly share theirs."""
    return tuple(decode_headers(text))


def _record(row: Row, value: bytes | None = None) -> Record:
    headers = [(EVENT_ID_HEADER, row.event_id.encode())]
    if row.headers:
        headers += _headers(row.headers)
    key = row.key.encode() if row.key is not None else None
    return Record(row.topic, key, row.payload if value is None else value, headers)


def _rendered(row: Row, render: Render, now: datetime) -> bytes | str:
    """The value to send, or why it cannot be sent (a render bug must not stop the relay)."""
    try:
        return render(row.payload, now)
    except Exception as exc:
        log.exception("outbox_render_failed", topic=row.topic, event_id=row.event_id)
        return f"render failed: {type(exc).__name__}: {exc}"


def _change(
    row: Row, attempts: int, error: str, first: datetime, now: datetime, due: datetime
) -> dict[str, Any]:
    return {
        "id": row.seq,
        "attempts": attempts,
        "available_at": due,
        "last_error": error,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "sent_at": None,
    }


def dlq_record(
    row: Row, error: str, attempts: int, first: datetime, now: datetime, max_bytes: int
) -> Record:
    """The dead letter: same key and value, original headers, and why it died."""
    rec = _record(row)
    headers = [
        *rec.headers,
        ("dlq-original-topic", row.topic.encode()),
        ("dlq-error", error[:1000].encode()),
        ("dlq-attempts", str(attempts).encode()),
        ("dlq-first-attempt-at", first.isoformat().encode()),
        ("dlq-last-attempt-at", now.isoformat().encode()),
        ("dlq-created-at", row.created_at.isoformat().encode()),
    ]
    value = rec.value
    if record_size(Record(row.topic + DLQ_SUFFIX, rec.key, value, headers)) > max_bytes:
        # Too large for the broker: the full value stays in the outbox row for replay.
        headers.append(("dlq-value-omitted-bytes", str(len(value)).encode()))
        value = b""
    return Record(row.topic + DLQ_SUFFIX, rec.key, value, headers)


async def publish_round(
    publisher: Publisher,
    rows: Sequence[Row],
    settings: OutboxSettings,
    backoff: Backoff,
    now: datetime,
    hooked: Collection[str] = (),
    renders: Mapping[str, Render] | None = None,
    beside: Beside | None = None,
) -> RoundResult:
    """Publish ``rows``; ``now`` is the hand-over instant given to renders and hooks.
    ``beside`` runs while the acks are awaited (both are done on return)."""
    res = RoundResult(handed_at=now)
    doomed: list[tuple[Row, str, int, datetime]] = []
    to_send: list[Row] = []
    records: list[Record] = []
    for row in rows:
        if row.defect is not None:
            doomed.append((row, row.defect, row.attempts, row.first_attempt_at or now))
            continue
        if backoff.exhausted(row.attempts):
            # An earlier round gave up on it but could not reach the dead-letter topic.
            error = row.last_error or "attempts exhausted"
            doomed.append((row, error, row.attempts, row.first_attempt_at or now))
            continue
        render = renders.get(row.topic) if renders else None
        value = _rendered(row, render, now) if render is not None else None
        if isinstance(value, str):
            doomed.append((row, value, row.attempts + 1, row.first_attempt_at or now))
            continue
        to_send.append(row)
        records.append(_record(row, value))

    acks = publisher.publish(records) if records else _nothing()
    outcomes = await _beside_acks(acks, beside, to_send, records, hooked, now)
    for row, rec, out in zip(to_send, records, outcomes, strict=True):
        if isinstance(out, Delivered):
            res.broker_answered = True
            res.sent_seqs.append(row.seq)
            res.sent_ids.append(row.event_id)
            res.sent_topics.append(row.topic)
            if row.topic in hooked:
                res.delivered.append((row, rec, out))
            continue
        res.failed_topics.append(row.topic)
        if out.kind == "unavailable":
            res.unavailable = out.error
            res.unsent_seqs.append(row.seq)
            res.retried_topics.append(row.topic)
            continue
        res.broker_answered = True
        attempts = row.attempts + 1
        first = row.first_attempt_at or now
        due = next_due(backoff, attempts, now, permanent=out.kind == "permanent")
        if due is None:
            doomed.append((row, out.error, attempts, first))
        else:
            res.retry.append(_change(row, attempts, out.error, first, now, due))
            res.retried_topics.append(row.topic)
            log.warning("outbox_publish_retry", topic=row.topic, attempts=attempts, error=out.error)

    if doomed:
        await _bury(publisher, doomed, settings, now, res)
    return res


def _sent_event(row: Row, rec: Record, partition: int, offset: int, at: datetime) -> SentEvent:
    """What a hook is given of one event (before its ack: ``partition``/``offset`` NOT_YET)."""
    return SentEvent(
        row.event_id, row.topic, row.key, rec.value, dict(rec.headers), partition, offset, at
    )


async def _nothing() -> list[Outcome]:
    return []


async def _beside_acks(
    acks: Awaitable[list[Outcome]],
    beside: Beside | None,
    to_send: Sequence[Row],
    records: Sequence[Record],
    hooked: Collection[str],
    now: datetime,
) -> list[Outcome]:
    """``await acks`` with ``beside`` running meanwhile; both are finished on return (an
    error in either cancels the other: the session is never left mid-statement)."""
    if beside is None:
        return await acks
    ahead = [
        _sent_event(row, rec, NOT_YET, NOT_YET, now)
        for row, rec in zip(to_send, records, strict=True)
        if row.topic in hooked
    ]
    if not ahead:
        return await acks
    task = asyncio.ensure_future(beside(ahead))
    try:
        outcomes = await acks
    except BaseException:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise
    await task
    return outcomes


async def _bury(
    publisher: Publisher,
    doomed: list[tuple[Row, str, int, datetime]],
    settings: OutboxSettings,
    now: datetime,
    res: RoundResult,
) -> None:
    if not settings.dlq_enabled:
        for row, error, attempts, first in doomed:
            res.dead.append(_change(row, attempts, error, first, now, now))
            res.dead_topics.append(row.topic)
        return
    letters = [dlq_record(*d, now, settings.max_message_bytes) for d in doomed]
    outcomes = await publisher.publish(letters)
    for (row, error, attempts, first), out in zip(doomed, outcomes, strict=True):
        if isinstance(out, Delivered):
            res.broker_answered = True
        elif out.kind == "unavailable":
            # Keep it PENDING; the next round sends the dead letter again.
            res.unavailable = out.error
            res.retry.append(_change(row, attempts, error, first, now, now))
            continue
        else:
            res.broker_answered = True
            error = f"{error}; dead-letter publish failed: {out.error}"
        res.dead.append(_change(row, attempts, error, first, now, now))
        res.dead_topics.append(row.topic)
        log.error("outbox_dead", topic=row.topic, attempts=attempts, error=error)


def has_writes(res: RoundResult) -> bool:
    return bool(res.sent_seqs or res.retry or res.dead)


def _sent_events(
    res: RoundResult, hooks: Mapping[str, Sequence[Hook]], done: Collection[Hook] = ()
) -> dict[str, list[SentEvent]]:
    """The acknowledged events of each topic that has hooks still to run (not ``done``)."""
    due = {topic for topic, hs in hooks.items() if any(h not in done for h in hs)}
    by_topic: dict[str, list[SentEvent]] = {}
    if not due or not res.delivered:
        return by_topic
    at = res.handed_at
    assert at is not None
    for row, rec, out in res.delivered:
        if row.topic in due:
            event = _sent_event(row, rec, out.partition, out.offset, at)
            by_topic.setdefault(row.topic, []).append(event)
    return by_topic


async def record_round(
    session: AsyncSession,
    res: RoundResult,
    hooks: Mapping[str, Sequence[Hook]],
    now: datetime,
    premarked: bool = False,
    done: Collection[Hook] = (),
) -> None:
    """Write the round's outcome and run the hooks, in ``session``'s transaction.

    ``premarked``: the rows were claimed with :func:`store.claim_and_mark`, so the sent
    ones are already SENT and the unsent ones go back to PENDING. ``done``: hooks that
    already ran for these events, beside the acks (``ahead``).
    """
    if premarked:
        await store.unmark(session, res.unsent_seqs)
    else:
        await store.mark_sent(session, res.sent_seqs, now)
    for topic, events in _sent_events(res, hooks, done).items():
        for hook in hooks[topic]:
            if hook in done:
                continue
            try:
                # A failing hook must not send the events again and again: its own
                # writes roll back, the rows are still marked SENT.
                async with session.begin_nested():
                    await hook(session, events)
            except Exception:
                log.exception("outbox_hook_failed", topic=topic, events=len(events))
                res.hook_failed_topics.append(topic)
    await store.mark_retry(session, res.retry)
    await store.mark_dead(session, res.dead)
