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
   execution deleted, the order restored), other refused ones stay NEW;
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
    mark_sent,
    unclaim_executions,
)
from tranche.trade.reservation import Reservation, release
from tranche.trade.settings import TradeSettings

__all__ = ["BulkSubmitter", "Outcome", "OutcomeKind"]

log = get_logger(__name__)

OutcomeKind = Literal["sent", "rejected", "unavailable", "not_found", "conflict"]
EXHAUSTED = "RETRY_EXHAUSTED"


@dataclass(frozen=True)
class Outcome:
    """What became of one execution. ``rejected``: the execution service refused it;
    ``unavailable``: it could not be reached or kept failing transiently."""

    execution_id: int
    kind: OutcomeKind
    message: str | None = None
    execution_service_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "sent"


Post = tuple[int, dict[str, Any]]


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
        posts = await self._claim(list(dict.fromkeys(execution_ids)), outcomes)
        size = batch_size or self._settings.effective_batch_size
        slots = asyncio.Semaphore(self._settings.execution_service_max_in_flight)
        batches = list(chunked(posts, size))
        results = await asyncio.gather(
            *(self._run_batch(b, slots, reservations, outcomes) for b in batches),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self._report(outcomes, len(batches), time.perf_counter() - start)
        return outcomes

    async def _claim(self, ids: list[int], outcomes: dict[int, Outcome]) -> list[Post]:
        async with self._store.write() as session:
            rows = await get_executions(session, ids)
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
            return [(id_, execution_post(rows[id_])) for id_ in ids if id_ in claimed]

    async def _send(self, batch: Sequence[Post], slots: asyncio.Semaphore) -> BatchReply:
        async with slots:
            reply = await self._client.submit_batch([p for _, p in batch], self._new_key())
        self._metrics.batch(len(batch), reply.seconds, reply.outcome, reply.attempts - 1)
        return reply

    async def _run_batch(
        self,
        batch: Sequence[Post],
        slots: asyncio.Semaphore,
        reservations: Mapping[int, Reservation],
        outcomes: dict[int, Outcome],
    ) -> None:
        reply = await self._send(batch, slots)
        retry_limit = self._settings.execution_service_retry_failed_individually
        settled: dict[int, Outcome] = {}
        to_retry: list[tuple[Post, str]] = []
        for post, item in zip(batch, reply.items, strict=True):
            id_ = post[0]
            if item.ok:
                settled[id_] = Outcome(id_, "sent", None, item.execution_service_id)
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
        await self._record(settled, reservations)
        outcomes.update(settled)
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

        async def attempt() -> _Try:
            nonlocal batch_answer
            if batch_answer is not None:
                answer, batch_answer = batch_answer, None
                return answer
            self._metrics.item_retry()
            reply = await self._send([post], slots)
            item: ItemResult = reply.items[0]
            if item.ok:
                return _Try(Outcome(id_, "sent", None, item.execution_service_id), final=True)
            if reply.exhausted:
                return _Try(Outcome(id_, "unavailable", item.message), final=True)
            if not item.transient:
                return _Try(Outcome(id_, "rejected", item.message), final=True)
            return _Try(Outcome(id_, "unavailable", f"{EXHAUSTED}: {item.message}"))

        outcome = (await backoff.until(attempt, _Try.is_final, sleep=self._sleep)).outcome
        await self._record({id_: outcome}, reservations)
        outcomes[id_] = outcome

    async def _record(
        self, settled: Mapping[int, Outcome], reservations: Mapping[int, Reservation]
    ) -> None:
        """One transaction: accepted executions SENT, refused reservations released, other
        refused executions back to plain NEW."""
        sent = {i: o.execution_service_id for i, o in settled.items() if o.ok}
        refused = [i for i, o in settled.items() if not o.ok]
        if not settled:
            return
        async with self._store.write() as session:
            await mark_sent(session, {i: es for i, es in sent.items() if es is not None})
            await release(session, [reservations[i] for i in refused if i in reservations])
            await unclaim_executions(session, [i for i in refused if i not in reservations])

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
