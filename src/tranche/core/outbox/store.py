"""The relay's SQL: claim rows, keep per-key order, record outcomes, table statistics, purge.

The outbox is a :class:`~tranche.core.delivery.DeliveryQueue` (``QUEUE``): the due rule,
the plain claim, the recorded fates and the statistics are the queue's. What is the
outbox's own: the one-statement claim-and-mark of PostgreSQL and the order per key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy import BigInteger, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.delivery import DeliveryQueue
from tranche.core.outbox.table import MAX_ERROR, OutboxStatus, outbox_table

__all__ = [
    "QUEUE",
    "Row",
    "claim",
    "claim_and_mark",
    "claim_events",
    "count_pending",
    "mark_dead",
    "mark_retry",
    "mark_sent",
    "purge_sent",
    "sent_among",
    "split_blocked",
    "table_stats",
    "unmark",
]

t = outbox_table
PENDING = OutboxStatus.PENDING.value
QUEUE = DeliveryQueue(
    t,
    id="seq",
    due_at="available_at",
    done=OutboxStatus.SENT.value,
    dead=OutboxStatus.DEAD.value,
    max_error=MAX_ERROR,
)


class Row(NamedTuple):
    seq: int
    event_id: str
    topic: str
    key: str | None
    payload: bytes
    headers: str | None
    attempts: int
    defect: str | None
    last_error: str | None
    created_at: datetime
    first_attempt_at: datetime | None


_ROW_COLUMNS = (
    t.c.seq,
    t.c.event_id,
    t.c.topic,
    t.c.key,
    t.c.payload,
    t.c.headers,
    t.c.attempts,
    t.c.defect,
    t.c.last_error,
    t.c.created_at,
    t.c.first_attempt_at,
)


async def claim(session: AsyncSession, limit: int, now: datetime, lock: bool) -> list[Row]:
    """The first ``limit`` due PENDING rows in ``seq`` order; locked (SKIP LOCKED) when ``lock``."""
    result = await session.execute(QUEUE.claim_select(now, limit, _ROW_COLUMNS, lock=lock))
    return list(map(Row._make, result.all()))


# QUEUE's due rule, then claim, mark SENT and find the earlier PENDING rows of other
# holders, in one round trip.
# The data-modifying CTE's effects are invisible to the rest of the statement, so
# "earlier" still sees the picked rows as PENDING and leaves them out explicitly.
_PG_CLAIM = text(
    """
WITH picked AS (
    SELECT seq FROM outbox
    WHERE status = 'PENDING' AND available_at <= :due
    ORDER BY seq LIMIT :limit
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE outbox SET status = 'SENT', sent_at = :now
    FROM picked WHERE outbox.seq = picked.seq
    RETURNING outbox.seq, outbox.event_id, outbox.topic, outbox.key, outbox.payload,
              outbox.headers, outbox.attempts, outbox.defect, outbox.last_error,
              outbox.created_at, outbox.first_attempt_at
), earlier AS (
    SELECT o.seq, o.topic, o.key FROM outbox o
    WHERE o.status = 'PENDING' AND o.key IS NOT NULL
      AND o.seq < (SELECT max(seq) FROM picked)
      AND o.seq NOT IN (SELECT seq FROM picked)
)
SELECT true AS mine, m.* FROM marked m
UNION ALL
SELECT false, e.seq, NULL, e.topic, e.key, NULL, NULL, 0, NULL, NULL, NULL, NULL FROM earlier e
"""
).columns(
    sa.column("mine", sa.Boolean()),
    *(sa.column(c.name, c.type) for c in _ROW_COLUMNS),
)


async def claim_and_mark(
    session: AsyncSession, limit: int, now: datetime, due: datetime | None = None
) -> tuple[list[Row], list[Row]]:
    """PostgreSQL: claim (SKIP LOCKED) and mark SENT in one statement; (to send, blocked).

    Others see the mark only when the round commits; a round that fails rolls it back.
    One UPDATE instead of a locking SELECT and an UPDATE halves the row writes. Blocked
    rows (see :func:`split_blocked`) must be given back with :func:`unmark`. ``due``:
    claim the rows due by then (default ``now``).
    """
    rows: list[Row] = []
    foreign: list[tuple[int, str, str]] = []
    params = {"now": now, "due": now if due is None else due, "limit": limit}
    for r in (await session.execute(_PG_CLAIM, params)).all():
        if r[0]:
            rows.append(Row._make(r[1:]))
        else:
            foreign.append((r[1], r[3], r[4]))
    rows.sort(key=_by_seq)
    return _split(rows, foreign)


def _by_seq(row: Row) -> int:
    return row.seq


async def unmark(session: AsyncSession, seqs: Sequence[int]) -> None:
    """Undo :func:`claim_and_mark` for rows this round does not send after all."""
    if seqs:
        await session.execute(
            update(t).where(_seq_in(session, seqs)).values(status=PENDING, sent_at=None)
        )


def _seq_in(session: AsyncSession, seqs: Sequence[int]) -> Any:
    """``seq IN (...)``; on PostgreSQL one array parameter instead of one per row."""
    if session.get_bind().dialect.name == "postgresql":
        return t.c.seq == func.any(bindparam("seqs", list(seqs), type_=ARRAY(BigInteger)))
    return t.c.seq.in_(seqs)


async def split_blocked(session: AsyncSession, rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """``rows`` that may go now, and those with an earlier PENDING row of their key we lack.

    Such a row is being sent by another relay, is waiting for its retry, or was
    committed late; publishing ours first would break the order per key.
    """
    keyed = [r for r in rows if r.key is not None]
    if not keyed:
        return list(rows), []
    mine = {r.seq for r in rows}
    top = max(r.seq for r in keyed)
    result = await session.execute(
        select(t.c.seq, t.c.topic, t.c.key).where(
            t.c.status == PENDING, t.c.seq < top, t.c.key.is_not(None)
        )
    )
    return _split(rows, [(seq, topic, key) for seq, topic, key in result.all() if seq not in mine])


def _split(
    rows: Sequence[Row], foreign: Sequence[tuple[int, str, str]]
) -> tuple[list[Row], list[Row]]:
    """Keep a row unless a PENDING row of its key that is not ours comes before it."""
    first_foreign: dict[tuple[str, str], int] = {}
    for seq, topic, key in foreign:
        k = (topic, key)
        first_foreign[k] = min(seq, first_foreign.get(k, seq))
    if not first_foreign:
        return list(rows), []
    keep: list[Row] = []
    blocked: list[Row] = []
    for r in rows:
        ok = r.key is None or r.seq < first_foreign.get((r.topic, r.key), r.seq + 1)
        (keep if ok else blocked).append(r)
    return keep, blocked


async def mark_sent(session: AsyncSession, seqs: Sequence[int], now: datetime) -> None:
    if seqs:
        await session.execute(
            update(t)
            .where(_seq_in(session, seqs))
            .values(
                status=OutboxStatus.SENT.value,
                sent_at=now,
                attempts=t.c.attempts + 1,
                last_attempt_at=now,
                first_attempt_at=func.coalesce(t.c.first_attempt_at, now),
            )
        )


async def mark_retry(session: AsyncSession, changes: Iterable[dict[str, Any]]) -> None:
    """Rows stay PENDING with a new attempt count and due time (see ``dispatch``)."""
    await QUEUE.record_many(session, PENDING, changes)


async def mark_dead(session: AsyncSession, changes: Iterable[dict[str, Any]]) -> None:
    await QUEUE.record_many(session, OutboxStatus.DEAD.value, changes)


async def count_pending(session: AsyncSession, cap: int) -> int:
    """PENDING rows, counted up to ``cap`` (a bounded count stays cheap on a large backlog)."""
    pending = select(sa.literal(1)).where(t.c.status == PENDING).limit(cap).subquery()
    return int((await session.execute(select(func.count()).select_from(pending))).scalar_one())


async def sent_among(session: AsyncSession, event_ids: Iterable[str]) -> set[str]:
    ids = list(event_ids)
    found: set[str] = set()
    for i in range(0, len(ids), 1000):
        result = await session.execute(
            select(t.c.event_id).where(
                t.c.event_id.in_(ids[i : i + 1000]), t.c.status == OutboxStatus.SENT.value
            )
        )
        found.update(result.scalars())
    return found


async def table_stats(
    session: AsyncSession, now: datetime
) -> tuple[dict[str, tuple[int, float]], dict[str, int]]:
    """PENDING count and oldest age (seconds) per topic, and DEAD count per topic."""
    stats = await QUEUE.stats(session, now, by=t.c.topic)
    pending = {topic: (s.pending, s.oldest_pending_s) for topic, s in stats.items() if s.pending}
    return pending, {topic: s.dead for topic, s in stats.items() if s.dead}


async def purge_sent(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` SENT rows sent before ``before``; returns how many."""
    seqs = list(
        (
            await session.execute(
                select(t.c.seq)
                .where(t.c.status == OutboxStatus.SENT.value, t.c.sent_at < before)
                .order_by(t.c.seq)
                .limit(limit)
            )
        ).scalars()
    )
    if seqs:
        await session.execute(delete(t).where(_seq_in(session, seqs)))
    return len(seqs)


# The direct hand-off's claim (see ``handoff``): the rows of the given event ids that
# are still PENDING and not held by another relay, marked SENT, and the PENDING rows of
# their keys that come before them and are not among them (their order must be kept).
# The keys are joined as a set (a hash join), not compared with ``= ANY`` per row.
_PG_CLAIM_EVENTS = text(
    """
WITH picked AS (
    SELECT seq FROM outbox
    WHERE event_id = ANY(:ids) AND status = 'PENDING'
    FOR UPDATE SKIP LOCKED
), marked AS (
    UPDATE outbox SET status = 'SENT', sent_at = :now
    FROM picked WHERE outbox.seq = picked.seq
    RETURNING outbox.seq, outbox.event_id
), earlier AS (
    SELECT o.seq, o.topic, o.key FROM outbox o
    JOIN (SELECT DISTINCT k FROM unnest(CAST(:keys AS text[])) AS u(k)) ks ON o.key = ks.k
    WHERE o.status = 'PENDING'
      AND o.seq < (SELECT max(seq) FROM picked)
      AND o.seq NOT IN (SELECT seq FROM picked)
)
SELECT true AS mine, m.seq, m.event_id, NULL AS topic, NULL AS key FROM marked m
UNION ALL
SELECT false, e.seq, NULL, e.topic, e.key FROM earlier e
"""
).bindparams(bindparam("ids", type_=ARRAY(sa.String())))


def _with_seq(row: Row, seq: int) -> Row:
    """``row._replace(seq=seq)`` at a third of its cost (it runs once per handed-off event)."""
    return tuple.__new__(Row, (seq, *row[1:]))


async def claim_events(
    session: AsyncSession, events: Sequence[Row], now: datetime, premark: bool
) -> tuple[list[Row], list[Row]]:
    """Claim ``events`` (rows known to this process, ``seq`` unknown) for the direct
    hand-off; (to send, blocked), with ``seq`` filled in, in ``seq`` order.

    ``premark`` (PostgreSQL): one statement claims, marks SENT and finds the earlier
    rows of their keys, as :func:`claim_and_mark`; blocked rows must be given back with
    :func:`unmark`. Otherwise (MariaDB) a locking ``SELECT`` and :func:`split_blocked`.
    Rows another relay holds or already sent are left out: they are not ours to send.
    """
    by_id = {e.event_id: e for e in events}
    rows: list[Row] = []
    if premark:
        keys = list({e.key for e in events if e.key is not None})
        foreign: list[tuple[int, str, str]] = []
        params = {"ids": list(by_id), "keys": keys, "now": now}
        for mine, seq, event_id, topic, key in (
            await session.execute(_PG_CLAIM_EVENTS, params)
        ).all():
            if mine:
                rows.append(_with_seq(by_id[event_id], seq))
            elif topic is not None:
                foreign.append((seq, topic, key))
        rows.sort(key=_by_seq)
        return _split(rows, foreign)
    result = await session.execute(
        select(t.c.seq, t.c.event_id)
        .where(t.c.event_id.in_(list(by_id)), t.c.status == PENDING)
        .order_by(t.c.seq)
        .with_for_update(skip_locked=True)
    )
    rows = [_with_seq(by_id[event_id], seq) for seq, event_id in result.all()]
    return await split_blocked(session, rows) if rows else ([], [])
