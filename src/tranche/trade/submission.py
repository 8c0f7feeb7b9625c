"""Bulk submission of executions to the execution service (seed tasks 3-9).

``BulkSubmitter.submit(ids)`` is the one path every submission takes, a single
execution being a batch of one (seed task 7):

1. claim the executions (mark them in flight where still NEW, unsent and not
   already in flight), so a second, concurrent submission of the same execution
   is refused instead of sent twice;
2. map them to the execution service's post DTO and split them into batches of
   the effective batch size, at most ``MAX_IN_FLIGHT`` batches on the wire;
3. per batch, one transaction records the outcome: accepted executions get the
   execution service's id, ``quantity_placed``, status SENT and version + 1;
   refused executions born from a trade-order submission are released (the
   execution deleted, the order restored), other refused ones stay NEW.
   Recording is all or nothing: an answer that cannot be stored (an id that is
   not an int4, or one already given to another execution) or a failing record
   transaction releases the claims and keeps the batch's Idempotency-Key on its
   executions (``submission_key``); their next submission is sent as that same
   batch (ascending ids, the same body) under that key, so the execution service
   replays its first answer instead of creating them again;
4. items refused for a transient reason are resent one by one (new
   Idempotency-Key each time, since the stored answer for the old key is the
   failure) with the ``core.resilience.Backoff`` policy, and reported
   RETRY_EXHAUSTED when the attempts run out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import Clock, utc_now
from tranche.core.logging import get_logger
from tranche.core.resilience import Backoff
from tranche.trade.client import BatchReply, ExecutionServiceClient, ItemResult, Sleep
from tranche.trade.mapping import chunked, execution_post
from tranche.trade.metrics import SubmissionMetrics
from tranche.trade.models import StatusId
from tranche.trade.repository import (
    TradeStore,
    claim_executions,
    get_executions,
    keep_for_resend,
    mark_sent,
    service_ids_held,
    unclaim_executions,
    unrecorded_with_keys,
)
from tranche.trade.reservation import Reservation, release
from tranche.trade.settings import TradeSettings

__all__ = ["BulkSubmitter", "Outcome", "OutcomeKind"]

log = get_logger(__name__)

OutcomeKind = Literal["sent", "rejected", "unavailable", "unrecorded", "not_found", "conflict"]
EXHAUSTED = "RETRY_EXHAUSTED"


@dataclass(frozen=True)
class Outcome:
    """What became of one execution. ``rejected``: the execution service refused it;
    ``unavailable``: it could not be reached or kept failing transiently;
    ``unrecorded``: it answered but the answer could not be stored (resend reuses the key)."""

    execution_id: int
    kind: OutcomeKind
    message: str | None = None
    execution_service_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "sent"


Post = tuple[int, dict[str, Any]]
#: A batch to send: its Idempotency-Key and its posts, in ascending execution id order.
Batch = tuple[str, list[Post]]


@dataclass(frozen=True)
class _Try:
    """One try of an item resent alone; not ``final`` while it failed transiently."""

    outcome: Outcome
    final: bool = False

    def is_final(self) -> bool:
        return self.final


def _new_key() -> str:
    return f"trade-{uuid.uuid4().hex}"


class BulkSubmitter:
    def __init__(
        self,
        store: TradeStore,
        client: ExecutionServiceClient,
        settings: TradeSettings,
        metrics: SubmissionMetrics,
        sleep: Sleep = asyncio.sleep,
        new_key: Callable[[], str] = _new_key,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._sleep = sleep
        self._new_key = new_key
        self._clock = clock

    async def submit(
        self,
        execution_ids: Sequence[int],
        reservations: Mapping[int, Reservation] | None = None,
        batch_size: int | None = None,
    ) -> dict[int, Outcome]:
        """Submit the executions; ``reservations`` are released for those refused."""
        start = time.perf_counter()
        reservations = reservations or {}
        outcomes: dict[int, Outcome] = {}
        fresh, resends = await self._claim(list(dict.fromkeys(execution_ids)), outcomes)
        size = batch_size or self._settings.effective_batch_size
        slots = asyncio.Semaphore(self._settings.execution_service_max_in_flight)
        # Ascending ids, so a batch resent under its old key carries the same body.
        fresh.sort(key=lambda post: post[0])
        batches: list[Batch] = [(self._new_key(), list(b)) for b in chunked(fresh, size)]
        batches += resends
        results = await asyncio.gather(
            *(self._run_batch(b, slots, reservations, outcomes) for b in batches),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._report(outcomes, len(batches), time.perf_counter() - start)
        return outcomes

    async def _claim(
        self, ids: list[int], outcomes: dict[int, Outcome]
    ) -> tuple[list[Post], list[Batch]]:
        """Posts of the executions claimed: fresh ones, and batches to resend under a kept
        key (the whole batch of that key is claimed with any one of its executions)."""
        async with self._store.write() as session:
            rows = await get_executions(session, ids)
            keys = {r.submission_key for r in rows.values() if r.submission_key}
            companions = await unrecorded_with_keys(session, keys)
            ids = ids + [i for i in sorted(companions) if i not in rows]
            rows.update(companions)
            candidates: list[int] = []
            for id_ in ids:
                row = rows.get(id_)
                if row is None:
                    outcomes[id_] = Outcome(id_, "not_found", f"Execution not found: {id_}")
                elif row.execution_service_id is not None:
                    outcomes[id_] = Outcome(
                        id_,
                        "conflict",
                        f"Execution {id_} was already submitted "
                        f"(executionServiceId {row.execution_service_id})",
                    )
                elif row.execution_status_id != StatusId.NEW:
                    status = row.execution_status.abbreviation
                    outcomes[id_] = Outcome(
                        id_,
                        "conflict",
                        f"Execution {id_} is {status}; only NEW executions can be submitted",
                    )
                else:
                    candidates.append(id_)
            now = self._clock()
            stale = now - timedelta(seconds=self._settings.submission_lease_s)
            claimed = await claim_executions(session, candidates, now, stale)
            for id_ in candidates:
                if id_ not in claimed:
                    outcomes[id_] = Outcome(
                        id_, "conflict", f"Execution {id_} is being submitted by another request"
                    )
            fresh: list[Post] = []
            resends: dict[str, list[Post]] = {}
            for id_ in sorted(claimed):
                post = (id_, execution_post(rows[id_]))
                key = rows[id_].submission_key
                if key is None:
                    fresh.append(post)
                else:
                    resends.setdefault(key, []).append(post)
            return fresh, list(resends.items())

    async def _send(self, batch: Sequence[Post], slots: asyncio.Semaphore, key: str) -> BatchReply:
        async with slots:
            reply = await self._client.submit_batch([p for _, p in batch], key)
        self._metrics.batch(len(batch), reply.seconds, reply.outcome, reply.attempts - 1)
        return reply

    async def _run_batch(
        self,
        keyed: Batch,
        slots: asyncio.Semaphore,
        reservations: Mapping[int, Reservation],
        outcomes: dict[int, Outcome],
    ) -> None:
        key, batch = keyed
        reply = await self._send(batch, slots, key)
        retry_limit = self._settings.execution_service_retry_failed_individually
        settled: dict[int, Outcome] = {}
        to_retry: list[tuple[Post, str]] = []
        for post, item in zip(batch, reply.items, strict=True):
            id_ = post[0]
            if item.ok:
                settled[id_] = Outcome(id_, "sent", None, item.execution_service_id)
            elif item.unrecordable:
                settled[id_] = Outcome(
                    id_,
                    "unrecorded",
                    _unrecorded_message(id_, f"its answer is unusable: {item.message}"),
                )
            elif reply.exhausted:
                settled[id_] = Outcome(id_, "unavailable", item.message)
            elif reply.outcome == "400":
                settled[id_] = Outcome(id_, "rejected", item.message)
            elif item.transient and retry_limit > 0:
                to_retry.append((post, item.message or ""))
            elif item.transient:
                settled[id_] = Outcome(id_, "unavailable", item.message)
            else:
                settled[id_] = Outcome(id_, "rejected", item.message)
        outcomes.update(await self._record(settled, reservations, key))
        await asyncio.gather(
            *(self._retry_alone(p, m, slots, reservations, outcomes) for p, m in to_retry)
        )

    async def _retry_alone(
        self,
        post: Post,
        message: str,
        slots: asyncio.Semaphore,
        reservations: Mapping[int, Reservation],
        outcomes: dict[int, Outcome],
    ) -> None:
        s = self._settings
        id_ = post[0]
        ceiling = s.execution_service_individual_retry_max_delay_ms / 1000
        # Try 1 was the batch, which left this item failed for a transient reason: the
        # policy then waits its backoff before each of the resends.
        backoff = Backoff(
            max_attempts=s.execution_service_retry_failed_individually + 1,
            initial_s=min(s.execution_service_individual_retry_initial_delay_ms / 1000, ceiling),
            multiplier=s.execution_service_individual_retry_multiplier,
            max_s=ceiling,
        )
        batch_answer: _Try | None = _Try(Outcome(id_, "unavailable", f"{EXHAUSTED}: {message}"))
        last_key = ""

        async def attempt() -> _Try:
            nonlocal batch_answer, last_key
            if batch_answer is not None:
                answer, batch_answer = batch_answer, None
                return answer
            self._metrics.item_retry()
            last_key = self._new_key()
            reply = await self._send([post], slots, last_key)
            item: ItemResult = reply.items[0]
            if item.ok:
                return _Try(Outcome(id_, "sent", None, item.execution_service_id), final=True)
            if item.unrecordable:
                unusable = f"its answer is unusable: {item.message}"
                return _Try(
                    Outcome(id_, "unrecorded", _unrecorded_message(id_, unusable)), final=True
                )
            if reply.exhausted:
                return _Try(Outcome(id_, "unavailable", item.message), final=True)
            if not item.transient:
                return _Try(Outcome(id_, "rejected", item.message), final=True)
            return _Try(Outcome(id_, "unavailable", f"{EXHAUSTED}: {item.message}"))

        outcome = (await backoff.until(attempt, _Try.is_final, sleep=self._sleep)).outcome
        outcomes.update(await self._record({id_: outcome}, reservations, last_key))

    async def _record(
        self, settled: Mapping[int, Outcome], reservations: Mapping[int, Reservation], key: str
    ) -> dict[int, Outcome]:
        """One transaction: accepted executions SENT, refused reservations released, other
        refused executions back to plain NEW, unrecordable ones released with ``key`` kept.
        If that transaction fails, a second one releases every claim and keeps the key on
        each execution the execution service may have created. Returns the final outcomes."""
        if not settled:
            return {}
        try:
            async with self._store.write() as session:
                final = await _refuse_held_ids(session, settled)
                await _apply(session, final, reservations, key)
            return final
        except Exception as exc:  # any failure to record: release, never leave a claim
            log.exception("submission_record_failed", executions=len(settled), key=key)
            reason = f"its answer could not be recorded ({type(exc).__name__})"
            final = {
                i: Outcome(i, "unrecorded", _unrecorded_message(i, reason))
                if o.ok or o.kind == "unrecorded"
                else o
                for i, o in settled.items()
            }
            async with self._store.write() as session:
                await _apply(session, final, reservations, key)
            return final

    def _report(self, outcomes: Mapping[int, Outcome], batches: int, seconds: float) -> None:
        sent = sum(1 for o in outcomes.values() if o.ok)
        exhausted = sum(
            1 for o in outcomes.values() if o.message and o.message.startswith(EXHAUSTED)
        )
        failed = len(outcomes) - sent - exhausted
        self._metrics.submission(sent, failed, exhausted, seconds)
        log.info(
            "bulk_submission",
            executions=len(outcomes),
            batches=batches,
            sent=sent,
            failed=failed,
            exhausted=exhausted,
            seconds=round(seconds, 3),
            per_s=round(len(outcomes) / seconds, 1) if seconds > 0 else None,
        )


def _unrecorded_message(execution_id: int, reason: str) -> str:
    return (
        f"Execution {execution_id} was answered by the execution service but {reason}; "
        f"resubmit it (POST /api/v1/execution/{execution_id}/submit) to resend it under "
        "the same Idempotency-Key"
    )


async def _refuse_held_ids(
    session: AsyncSession, settled: Mapping[int, Outcome]
) -> dict[int, Outcome]:
    """An execution service id already stored on another execution is not stored again."""
    final = dict(settled)
    wanted = {o.execution_service_id for o in settled.values() if o.ok}
    held = await service_ids_held(session, (w for w in wanted if w is not None))
    for id_, outcome in settled.items():
        owner = held.get(outcome.execution_service_id or 0)
        if outcome.ok and owner is not None and owner != id_:
            reason = f"its id {outcome.execution_service_id} is already held by execution {owner}"
            final[id_] = Outcome(id_, "unrecorded", _unrecorded_message(id_, reason))
    return final


async def _apply(
    session: AsyncSession,
    final: Mapping[int, Outcome],
    reservations: Mapping[int, Reservation],
    key: str,
) -> None:
    sent = {i: o.execution_service_id for i, o in final.items() if o.ok}
    kept = [i for i, o in final.items() if o.kind == "unrecorded"]
    refused = [i for i, o in final.items() if not o.ok and o.kind != "unrecorded"]
    await mark_sent(session, {i: es for i, es in sent.items() if es is not None})
    await keep_for_resend(session, kept, key)
    await release(session, [reservations[i] for i in refused if i in reservations])
    await unclaim_executions(session, [i for i in refused if i not in reservations])
