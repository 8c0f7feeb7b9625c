r"""The relay: a task in the app's lifespan that moves outbox rows to Kafka.

On PostgreSQL and MariaDB a round is one transaction: claim rows
(``FOR UPDATE SKIP LOCKED``, READ COMMITTED so MariaDB takes no gap locks that
would block the app's inserts), publish, mark SENT and run the hooks, commit.
Several replicas relay one table at once, and a relay killed between publish
and commit leaves its rows PENDING, to be sent again (at-least-once; the
duplicate carries the same ``event-id``). SQLite has no row locks: one relay
reads, publishes outside any transaction (a long read would make its later
write fail with SQLITE_BUSY_SNAPSHOT), then records the outcome.

The relay wakes when this process commits new rows (see ``wake``) and polls
otherwise; on PostgreSQL/MariaDB those rows are first offered to the direct
hand-off (``handoff``), which sends them at once, and the rounds send the rest.
While the circuit is open it claims nothing: rows stay PENDING. The circuit's
first open period is short (``BREAKER_FIRST_OPEN_S``) and doubles with every
failed probe up to ``breaker_reset_ms``: events resume within seconds of a
short outage's end, and a long outage costs one cheap probe per reset period. Its
rounds and its housekeeping (table gauges, purge of old SENT rows) are two
:class:`~tranche.core.loops.BackgroundLoop`\ s.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import utc_now
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.loops import BackgroundLoop
from tranche.core.outbox import store, wake
from tranche.core.outbox.ahead import publish_and_record
from tranche.core.outbox.dispatch import (
    Beside,
    Hook,
    Render,
    RoundResult,
    has_writes,
    publish_round,
    record_round,
)
from tranche.core.outbox.handoff import Handoff
from tranche.core.outbox.metrics import OutboxMetrics
from tranche.core.outbox.publisher import BrokerUnavailableError, Publisher
from tranche.core.outbox.settings import OutboxSettings
from tranche.core.outbox.waiting import SentWaiters
from tranche.core.resilience import BreakerState, CircuitBreaker
from tranche.core.settings import KafkaSettings

__all__ = ["Relay", "utc_now"]

log = get_logger(__name__)

STATS_INTERVAL_S = 5.0
PURGE_CHUNK = 5000
STOP_GRACE_S = 10.0
ANALYZE_INTERVAL_S = 60.0
#: First open period of the broker circuit; doubles per failed probe up to breaker_reset_ms.
BREAKER_FIRST_OPEN_S = 1.0


class Relay:
    """Publishes the outbox of ``db``; start it in the app's lifespan, stop it on shutdown."""

    def __init__(
        self,
        db: Database,
        kafka: KafkaSettings,
        settings: OutboxSettings,
        registry: CollectorRegistry,
        *,
        name: str = "outbox",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.name = name
        self._db = db
        self._settings = settings
        self._clock = clock
        self._backoff = settings.backoff()
        self._metrics = OutboxMetrics.for_registry(registry)
        self._publisher = (
            Publisher(kafka, settings.max_message_bytes) if settings.relay_enabled else None
        )
        self._breaker = CircuitBreaker(
            settings.breaker_failure_threshold,
            settings.breaker_reset_ms / 1000,
            clock=lambda: self._clock().timestamp(),
            on_change=self._on_breaker,
            first_open_s=min(BREAKER_FIRST_OPEN_S, settings.breaker_reset_ms / 1000),
        )
        self._metrics.circuit_state.set(BreakerState.CLOSED)
        self._locking = db.dialect in ("postgresql", "mysql")
        self._hooks: dict[str, list[Hook]] = {}
        self._ahead: dict[str, list[Hook]] = {}
        self._renders: dict[str, Render] = {}
        self._waiters = SentWaiters(db)
        self._rounds = BackgroundLoop(
            f"relay:{name}",
            self._worker_round,
            interval_s=settings.poll_interval_ms / 1000,
            workers=settings.relay_concurrency if self._locking else 1,
            # Mid-publish on a slow broker at the end of the grace: the open transaction
            # rolls back and the rows stay PENDING for the next start.
            grace_s=STOP_GRACE_S,
            error_event="outbox_round_failed",
        )
        self._housekeeper = BackgroundLoop(
            f"relay-housekeeping:{name}",
            self._housekeeping,
            interval_s=STATS_INTERVAL_S,
            error_event="outbox_housekeeping_failed",
        )
        self._handoff = (
            Handoff(
                db,
                name=name,
                batch_size=settings.batch_size,
                workers=settings.relay_concurrency,
                hooks=self._hooks,
                ahead=self._ahead,
                clock=self._clock,
                publish=self._publish,
                committed=self._committed,
                fallback=self._rounds.wake,
                accepting=lambda: self.relaying,
            )
            if self._locking and settings.direct_handoff and self._publisher is not None
            else None
        )
        # With the hand-off on, a round leaves a row alone for two poll intervals after
        # it became due: a fresh row is the hand-off's (racing it for the same rows only
        # costs both claims); a row the hand-off gave up on is sent a moment later.
        self._handoff_grace = timedelta(
            milliseconds=2 * settings.poll_interval_ms if self._handoff is not None else 0
        )
        self._started = False
        self._topics: set[str] = set()
        self._next_analyze = 0.0

    # -- lifecycle -----------------------------------------------------------------
    def on_sent(self, topic: str, hook: Hook, *, ahead: bool = False) -> None:
        """Run ``hook`` for ``topic``'s events in the transaction that marks them SENT.

        ``ahead``: it needs nothing the ack tells (partition, offset), so on
        PostgreSQL/MariaDB it runs while the acks are awaited, and is undone and run
        again after them unless all its events were delivered (see ``ahead``)."""
        self._hooks.setdefault(topic, []).append(hook)
        if ahead:
            self._ahead.setdefault(topic, []).append(hook)

    def render(self, topic: str, render: Render) -> None:
        """Rewrite ``topic``'s values as they are handed to the producer (one per topic);
        the hand-over instant it is given is the hooks' :attr:`SentEvent.sent_at`."""
        self._renders[topic] = render

    async def start(self) -> None:
        if self._started or self._publisher is None:
            return
        self._started = True
        wake.register(self._db.engine.sync_engine, self.notify)
        self._rounds.start()
        if self._handoff is not None:
            self._handoff.start()
        self._housekeeper.start()
        log.info("outbox_relay_started", relay=self.name, database=self._db.name)

    async def stop(self) -> None:
        wake.unregister(self._db.engine.sync_engine, self.notify)
        self._started = False
        try:
            if self._handoff is not None:
                await self._handoff.stop()
            await self._rounds.stop()
            await self._housekeeper.stop()
        finally:
            if self._publisher is not None:
                await self._publisher.close()
        log.info("outbox_relay_stopped", relay=self.name)

    def notify(self, rows: Sequence[tuple[Any, ...]] = ()) -> None:
        """Called after each commit that enqueued events (``rows``: those it wrote, when
        known): hand them off directly, or wake the relay now."""
        if rows and self._handoff is not None and self._handoff.submit(rows):
            return
        self._rounds.wake()

    @property
    def relaying(self) -> bool:
        """This process relays and the broker's circuit is closed."""
        return self._publisher is not None and self._breaker.state is BreakerState.CLOSED

    @property
    def circuit(self) -> BreakerState:
        return self._breaker.state

    def _on_breaker(self, state: BreakerState) -> None:
        self._metrics.circuit_state.set(state)
        if state is BreakerState.OPEN:
            log.warning(
                "outbox_circuit",
                relay=self.name,
                state="open",
                open_s=self._breaker.open_s,
                error=self._breaker.last_error,
            )
        else:
            log.info("outbox_circuit", relay=self.name, state=state.name.lower())

    # -- loop ----------------------------------------------------------------------
    async def _worker_round(self) -> float | None:
        """One round of a worker; on PostgreSQL/MariaDB several overlap (SKIP LOCKED)."""
        try:
            handled = await self._round()
        except BaseException:
            # A half-open probe that died here must not hold the only permit.
            self._breaker.release()
            raise
        if handled >= self._settings.batch_size:
            self._rounds.wake()  # more is waiting: rouse the other workers too
            return 0.0
        if self._breaker.state is BreakerState.OPEN:
            return max(self._breaker.retry_in(), 0.01)
        return None

    async def _round(self) -> int:
        if not self._breaker.allow():
            return 0
        limit = self._settings.batch_size
        if not self._locking:
            return await self._round_unlocked(limit)
        premark = self._db.dialect == "postgresql"
        async with self._db.sessions() as session:
            await self._begin(session)
            if premark:
                now = self._clock()
                due = now - self._handoff_grace
                rows, blocked = await store.claim_and_mark(session, limit, now, due)
                if blocked:
                    await store.unmark(session, [r.seq for r in blocked])
            else:
                rows = await store.claim(
                    session, limit, self._clock() - self._handoff_grace, lock=True
                )
                rows, _ = await store.split_blocked(session, rows) if rows else (rows, [])
            if not rows:
                await session.rollback()
                return await self._idle()
            res = await publish_and_record(
                session, rows, self._publish, self._hooks, self._ahead, self._clock, premark
            )
        self._committed(res)
        return len(rows)

    async def _round_unlocked(self, limit: int) -> int:
        """SQLite: read, publish outside any transaction, then record (one relay only)."""
        async with self._db.sessions() as session:
            rows = await store.claim(session, limit, self._clock(), lock=False)
            rows, _ = await store.split_blocked(session, rows) if rows else (rows, [])
            await session.rollback()
        if not rows:
            return await self._idle()
        res = await self._publish(rows)
        if has_writes(res):
            async with self._db.sessions() as session:
                await record_round(session, res, self._hooks, self._clock())
                await session.commit()
        self._committed(res)
        return len(rows)

    async def _begin(self, session: AsyncSession) -> None:
        options = {"isolation_level": "READ COMMITTED"} if self._db.dialect == "mysql" else {}
        await session.connection(execution_options=options)

    async def _publish(
        self, rows: Sequence[store.Row], beside: Beside | None = None
    ) -> RoundResult:
        assert self._publisher is not None
        now = self._clock()
        res = await publish_round(
            self._publisher,
            rows,
            self._settings,
            self._backoff,
            now,
            self._hooks,
            self._renders,
            beside,
        )
        if res.unavailable is not None:
            self._breaker.record_failure(res.unavailable)
            log.warning("outbox_broker_unavailable", relay=self.name, error=res.unavailable)
            # Start over with fresh connections and metadata: a broker that came back
            # without its topics (the embedded one keeps them in memory) must be asked
            # for them again, or it acknowledges records it then drops.
            await self._publisher.reset()
        elif res.broker_answered:
            self._breaker.record_success()
        else:
            self._breaker.release()
        return res

    async def _idle(self) -> int:
        """Nothing to send: a half-open circuit probes the broker with a metadata request."""
        if self._breaker.state is BreakerState.HALF_OPEN:
            assert self._publisher is not None
            try:
                await self._publisher.ping()
            except BrokerUnavailableError as exc:
                self._breaker.record_failure(str(exc))
            else:
                self._breaker.record_success()
        return 0

    def _committed(self, res: RoundResult) -> None:
        m = self._metrics
        for topic, n in Counter(res.sent_topics).items():
            m.published.labels(topic).inc(n)
        for counter, topics in (
            (m.failed, res.failed_topics),
            (m.retried, res.retried_topics),
            (m.dead, res.dead_topics),
            (m.hook_failed, res.hook_failed_topics),
        ):
            for topic, n in Counter(topics).items():
                counter.labels(topic).inc(n)
        self._topics.update(res.sent_topics)
        if res.sent_ids and self._waiters:
            # A failed hook may not have stored the instant: then callers read the table.
            self._waiters.sent(res.sent_ids, None if res.hook_failed_topics else res.handed_at)

    async def _housekeeping(self) -> float | None:
        """Table gauges, ANALYZE of a large backlog (PostgreSQL), purge of old SENT rows."""
        now = self._clock()
        async with self._db.sessions() as session:
            pending, dead = await store.table_stats(session, now)
            self._metrics.set_table_stats(pending, dead, self._topics)
            self._topics.update(pending, dead)
            backlog = sum(n for n, _ in pending.values())
            if (
                self._db.dialect == "postgresql"
                and backlog > 10 * self._settings.batch_size
                and time.monotonic() > self._next_analyze
            ):
                # Fresh statistics keep the claim on the index; with stale ones the
                # planner may scan the whole backlog every round.
                await session.execute(text("ANALYZE outbox"))
                self._next_analyze = time.monotonic() + ANALYZE_INTERVAL_S
            hours = self._settings.sent_retention_hours
            if hours > 0:
                purged = await store.purge_sent(session, now - timedelta(hours=hours), PURGE_CHUNK)
                await session.commit()
                if purged:
                    log.info("outbox_purged", relay=self.name, rows=purged)
        return None

    # -- callers -------------------------------------------------------------------
    async def wait_sent(self, event_ids: Collection[str], timeout_s: float) -> set[str]:
        """The ids among ``event_ids`` confirmed SENT within ``timeout_s`` (by any replica)."""
        return set(await self.wait_sent_at(event_ids, timeout_s))

    async def wait_sent_at(
        self, event_ids: Collection[str], timeout_s: float
    ) -> dict[str, datetime | None]:
        """As :meth:`wait_sent`, with the hand-over instant (``SentEvent.sent_at``) of each
        event this process sent; None for those found SENT in the table."""
        handoff = self._handoff
        return await self._waiters.wait(
            event_ids,
            timeout_s,
            self._settings.poll_interval_ms / 1000,
            # Rows this process is handing off are answered here; the table is asked only
            # when that does not come in time (another replica may have sent them).
            lambda ids: handoff is not None and handoff.holds_all(ids),
        )

    async def health(self) -> dict[str, Any]:
        """Broker details when reachable; raises when it is not or the circuit is open."""
        if self._publisher is None:
            return {"relay": "disabled"}
        state = self._breaker.state
        if state is BreakerState.OPEN:
            raise BrokerUnavailableError(
                f"circuit open for {self._breaker.retry_in():.0f}s more; "
                f"last error: {self._breaker.last_error}"
            )
        details = await self._publisher.ping()
        details["circuit"] = state.name.lower()
        return details
