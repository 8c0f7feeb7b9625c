"""The direct hand-off: a commit's events go to the producer at once, the row stays the backstop.

Without it a committed event waits for the relay's next round, which claims rows in
``seq`` order from the table and reads them back (payloads included). The enqueuing
session already holds the rows it wrote (``wake`` passes them on after the commit),
so the hand-off claims just those rows by event id (``FOR UPDATE SKIP LOCKED``, marked
SENT in the same statement on PostgreSQL), publishes them, records the outcome and
runs the after-send hooks in that one transaction, as a relay round does. A caller
waiting for its events (``Relay.wait_sent``) therefore waits one claim, one broker
round trip and one commit, not a poll cycle.

The guarantees are the relay's, because the row is the same row:

* the process dies between the commit and the ack: the claiming transaction rolls
  back with the connection, the row is PENDING, and a relay (this process after a
  restart, or another replica) sends it, with the same event id;
* the hand-off sent it: the row is SENT in the transaction that recorded the ack, so
  no relay sends it again; a row a relay claimed first is skipped here (not ours);
* order per key: a row with an earlier PENDING row of its key that the hand-off does
  not hold is given back (unmarked) for the relay, which sends them in order;
* a broker outage: nothing is handed off while the circuit is not closed, a failed
  hand-off counts on the relay's breaker like a failed round, and its rows are left
  PENDING for the relay, so a request waits at most its own publish wait.

Hand-offs are queued and taken in batches of up to ``batch_size`` by
``relay_concurrency`` workers, so many small commits share a round; past
``QUEUE_ROUNDS`` batches waiting the queue refuses more (memory stays bounded when
the broker is slow) and the relay picks those rows up from the table instead.
SQLite has no row locks, so its one relay does everything (no hand-off).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from tranche.core.db import Database
from tranche.core.loops import BackgroundLoop
from tranche.core.outbox import store
from tranche.core.outbox.ahead import Publish, publish_and_record
from tranche.core.outbox.dispatch import Hook, RoundResult
from tranche.core.outbox.store import Row

__all__ = ["QUEUE_ROUNDS", "Handoff"]

#: Batches of ``batch_size`` that may wait for a hand-off worker before commits fall
#: back to the relay.
QUEUE_ROUNDS = 10
STOP_GRACE_S = 10.0
#: Workers wait for a commit to wake them; this is only their longest sleep.
IDLE_S = 60.0


def _row(copy_row: tuple[Any, ...]) -> Row:
    """A stored row as the relay sees it, from the tuple ``enqueue`` wrote (``COPY_COLUMNS``
    order); its ``seq`` is learnt from the claim."""
    event_id, topic, key, payload, headers, _status, attempts, defect, created_at, _ = copy_row
    return Row(0, event_id, topic, key, payload, headers, attempts, defect, None, created_at, None)


class Handoff:
    """Sends the rows of this process's commits directly; see the module docstring.

    ``publish`` is the relay's (it keeps the breaker's count), ``hooks`` and ``ahead``
    its after-send hooks (all of them, and those that run beside the acks), ``committed`` its
    bookkeeping after a round (metrics, waiters), ``fallback`` wakes its rounds, and
    ``accepting`` says whether the circuit lets anything go out.
    """

    def __init__(
        self,
        db: Database,
        *,
        name: str,
        batch_size: int,
        workers: int,
        hooks: Mapping[str, Sequence[Hook]],
        ahead: Mapping[str, Sequence[Hook]],
        clock: Callable[[], datetime],
        publish: Publish,
        committed: Callable[[RoundResult], None],
        fallback: Callable[[], None],
        accepting: Callable[[], bool],
    ) -> None:
        self._db = db
        self._premark = db.dialect == "postgresql"
        self._batch = batch_size
        self._limit = batch_size * QUEUE_ROUNDS
        self._hooks = hooks
        self._ahead = ahead
        self._clock = clock
        self._publish = publish
        self._committed = committed
        self._fallback = fallback
        self._accepting = accepting
        self._queue: deque[Row] = deque()
        #: Event ids queued or in a round: their outcome will be known here.
        self._ids: set[str] = set()
        self._loop = BackgroundLoop(
            f"handoff:{name}",
            self._round,
            interval_s=IDLE_S,
            workers=workers,
            grace_s=STOP_GRACE_S,
            error_event="outbox_handoff_failed",
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stop the workers; what is still queued stays PENDING for the relay."""
        await self._loop.stop()
        self._queue.clear()
        self._ids.clear()

    def submit(self, rows: Sequence[tuple[Any, ...]]) -> bool:
        """Queue a commit's rows; False when refused (the relay must pick them up)."""
        if not self._loop.running or len(self._queue) >= self._limit or not self._accepting():
            return False
        converted = [_row(r) for r in rows]
        self._queue.extend(converted)
        self._ids.update(r.event_id for r in converted)
        self._loop.wake()
        return True

    def holds_all(self, event_ids: Collection[str]) -> bool:
        """Every one of ``event_ids`` is queued or being sent here."""
        return self._ids.issuperset(event_ids)

    async def _round(self) -> float | None:
        queue = self._queue
        if not queue:
            return None
        batch = [queue.popleft() for _ in range(min(len(queue), self._batch))]
        try:
            await self._send(batch)
        except BaseException:
            self._fallback()  # the rows are PENDING (rolled back): the relay sends them
            raise
        finally:
            self._ids.difference_update(r.event_id for r in batch)
        return 0.0 if queue else None

    async def _send(self, batch: list[Row]) -> None:
        if not self._accepting():
            self._fallback()
            return
        async with self._db.sessions() as session:
            if self._db.dialect == "mysql":
                # No gap locks that would block the application's inserts.
                await session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            rows, blocked = await store.claim_events(session, batch, self._clock(), self._premark)
            if not rows:
                await session.rollback()
                if blocked:
                    self._fallback()
                return
            if blocked and self._premark:
                await store.unmark(session, [r.seq for r in blocked])
            res = await publish_and_record(
                session, rows, self._publish, self._hooks, self._ahead, self._clock, self._premark
            )
        self._committed(res)
        if blocked or res.unsent_seqs or res.retry:
            self._fallback()
