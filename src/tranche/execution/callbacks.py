"""Fills owed to the trade service: persisted with the fill, delivered in the background.

The original called the trade service inside the PUT's transaction and only logged
a failure, so a fill was lost whenever the trade service was slow or down. Here the
PUT writes a ``trade_fill_callback`` row in its own transaction (and supersedes any
older undelivered row of the same execution: fills are cumulative, the latest one
says it all), and :class:`FillDeliverer` delivers it after the commit: woken by the
PUT, and polling for retries due and rows other replicas wrote.

The table is a :class:`~tranche.core.delivery.DeliveryQueue` with a lease column
(``locked_until``): replicas never deliver the same row at once and a replica that
dies mid-delivery releases its rows when the lease runs out. A transient failure
(network, 5xx, repeated 409) schedules the next attempt with the backoff policy
(``next_due``); after ``max_attempts``, or at once when the trade service refuses
the fill (400, 404), the row is FAILED with the reason kept in ``last_error``
(docs/execution-service.md shows how to requeue). The rounds run in a
:class:`~tranche.core.loops.BackgroundLoop`. What is this module's own: a newer
fill supersedes an older undelivered one, and waits while an older one is in flight.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.delivery import DeliveryQueue, next_due
from tranche.core.logging import get_logger
from tranche.core.loops import BackgroundLoop
from tranche.core.resilience import Backoff
from tranche.execution.clients.trade import FillDeliveryError, FillRejected, TradeServiceClient
from tranche.execution.metrics import ExecutionMetrics
from tranche.execution.models import fill_callback_table as cb

__all__ = ["DELIVERED", "FAILED", "PENDING", "SUPERSEDED", "FillDeliverer", "enqueue_fill"]

PENDING = "PENDING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"
SUPERSEDED = "SUPERSEDED"

log = get_logger(__name__)

QUEUE = DeliveryQueue(cb, done=DELIVERED, dead=FAILED, lease="locked_until", max_error=1000)


async def enqueue_fill(
    session: AsyncSession,
    *,
    execution_id: int,
    trade_service_execution_id: int,
    execution_status: str,
    quantity_filled: Decimal,
    average_price: Decimal | None,
    now: datetime,
) -> int:
    """Record a fill to deliver, in the caller's (the PUT's) transaction; returns how many
    undelivered older fills of the execution it supersedes."""
    superseded = await session.execute(
        cb.update()
        .where(cb.c.execution_id == execution_id, cb.c.status == PENDING)
        .values(status=SUPERSEDED)  # a lease in flight stays, so the newer fill waits for it
    )
    await session.execute(
        cb.insert().values(
            execution_id=execution_id,
            trade_service_execution_id=trade_service_execution_id,
            execution_status=execution_status,
            quantity_filled=quantity_filled,
            average_price=average_price,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return cast(CursorResult[Any], superseded).rowcount


class FillDeliverer:
    def __init__(
        self,
        db: Database,
        client: TradeServiceClient,
        metrics: ExecutionMetrics,
        *,
        backoff: Backoff,
        poll_s: float = 1.0,
        lease_s: float = 60.0,
        batch: int = 20,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.client = client
        self.metrics = metrics
        self.backoff = backoff
        self.poll_s = poll_s
        self.lease_s = lease_s
        self.batch = batch
        self.clock = clock
        self._loop = BackgroundLoop(
            "trade-fill-callbacks",
            self._round,
            interval_s=poll_s,
            error_event="fill_callbacks_round_failed",
        )
        # Rows this process may hold a lease on, with the lease value it wrote: a claim
        # whose commit failed may still have landed (a COMMIT cancelled by a stop, or whose
        # answer was lost), so its rows stay here and are released against that value,
        # which touches nothing if the claim never committed.
        self._held: dict[int, datetime] = {}
        self._uncertain: set[int] = set()  # held by a claim whose commit raised

    def wake(self) -> None:
        self._loop.wake()

    async def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        # Deliveries cut short: give their rows back now rather than at lease expiry
        # (a held row also holds back newer fills of its execution).
        try:
            await self._release_held()
        except Exception as exc:  # the lease runs out by itself
            log.warning("fill_callback_lease_release_failed", error=repr(exc))

    async def _release_held(self, only: set[int] | None = None) -> None:
        held = {i: v for i, v in self._held.items() if only is None or i in only}
        if not held:
            return
        async with self.db.transaction() as s:
            for lease in set(held.values()):
                ids = [i for i, v in held.items() if v == lease]
                await QUEUE.release(s, ids, leased_until=lease)
        for i in held:
            self._held.pop(i, None)

    async def _round(self) -> float | None:
        if self._uncertain:
            await self._release_held(self._uncertain)
            self._uncertain.clear()
        delivered = await self.run_once()
        await self._refresh_gauges()
        return 0.0 if delivered else None

    async def _claim(self) -> list[dict[str, Any]]:
        now = self.clock()
        other = cb.alias("other")
        # An older fill of the same execution still being delivered (by any replica) goes
        # first: otherwise it could land after this newer one and undo it.
        in_flight = sa.exists().where(
            other.c.execution_id == cb.c.execution_id,
            other.c.id != cb.c.id,
            other.c.locked_until > now,
        )
        lease = QUEUE.lease_until(now, self.lease_s)
        claimed: list[int] = []
        try:
            async with self.db.transaction() as s:
                rows = await QUEUE.claim_leased(s, now, self.batch, self.lease_s, where=~in_flight)
                # Held before the commit: a stop that cancels the commit after it took
                # effect must still give these rows back, or they wait out the lease.
                claimed = [int(r["id"]) for r in rows]
                self._held.update(dict.fromkeys(claimed, lease))
        except BaseException:
            # The claim may or may not have committed: the next round (or the stop) gives
            # back whatever of it did, guarded by the lease value.
            self._uncertain.update(claimed)
            raise
        return [dict(r) for r in rows]

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many rows were handled."""
        rows = await self._claim()
        if rows:
            await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: dict[str, Any]) -> None:
        attempts = int(row["attempts"]) + 1
        values: dict[str, Any] = {"attempts": attempts}
        outcome = DELIVERED
        try:
            await self.client.report_fill(
                row["trade_service_execution_id"],
                row["execution_status"],
                row["quantity_filled"],
                row["average_price"],
            )
            values |= {"status": DELIVERED, "delivered_at": self.clock(), "last_error": None}
        except (FillRejected, FillDeliveryError) as exc:
            due = next_due(
                self.backoff, attempts, self.clock(), permanent=isinstance(exc, FillRejected)
            )
            if due is not None:
                outcome = "retry"
                values |= {"next_attempt_at": due, "last_error": str(exc)}
            else:
                outcome = FAILED
                given_up = isinstance(exc, FillDeliveryError)
                values |= {
                    "status": FAILED,
                    "last_error": f"gave up: {exc}" if given_up else str(exc),
                }
        self.metrics.callbacks.labels(outcome.lower()).inc()
        log_fn = log.info if outcome == DELIVERED else log.warning
        log_fn(
            "trade_fill_callback",
            outcome=outcome,
            execution_id=row["execution_id"],
            trade_execution_id=row["trade_service_execution_id"],
            attempts=attempts,
            error=QUEUE.clip(values.get("last_error")),
        )
        async with self.db.transaction() as s:
            # A row superseded meanwhile keeps that status; its lease is dropped either way,
            # which lets the newer fill go.
            await QUEUE.record(s, row["id"], values, only_pending=True)
            await QUEUE.release(s, [row["id"]], leased_until=self._held.get(int(row["id"])))
        self._held.pop(int(row["id"]), None)

    async def _refresh_gauges(self) -> None:
        async with self.db.sessions() as s:
            stats = (await QUEUE.stats(s, self.clock())).get(None)
        self.metrics.callbacks_pending.set(stats.pending if stats else 0)
        self.metrics.callbacks_oldest.set(stats.oldest_pending_s if stats else 0.0)

    async def status(self) -> dict[str, int]:
        """Rows by status, for /actuator/info and operators."""
        async with self.db.sessions() as s:
            result = await s.execute(sa.select(cb.c.status, sa.func.count()).group_by(cb.c.status))
            return {str(status): int(n) for status, n in result.all()}
