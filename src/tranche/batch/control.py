"""Per-execution control: stop requests, lock fencing and the heartbeat.

A stop may be asked in this process (:meth:`ExecutionControl.request_stop`) or in another
one (the execution's row becomes STOPPING); checkpoints read the row (at most every
:data:`STOP_POLL_SECONDS`), so either is seen after the current chunk, or within that
time plus a chunk. Every unit of work starts by renewing this execution's job
lock: if another process took the lock over (it judged us dead), the renewal matches no row
and the chunk is abandoned before it writes anything (:class:`LockLostError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tranche.batch import locks
from tranche.batch.context import ExecutionContext
from tranche.batch.errors import LockLostError
from tranche.batch.model import BatchStatus, JobExecution, StepExecution
from tranche.batch.repository import JobRepository
from tranche.batch.repository_rows import COUNTERS
from tranche.batch.uow import UnitOfWork
from tranche.core.logging import get_logger

__all__ = ["STOP_POLL_SECONDS", "ExecutionControl", "Snapshot"]

log = get_logger(__name__)

#: Longest time between two reads of the execution's row for another process's stop.
STOP_POLL_SECONDS = 0.5


@dataclass
class Snapshot:
    """Counters and contexts before a unit of work, restored if it rolls back."""

    counters: dict[str, int]
    step_context: ExecutionContext
    job_context: ExecutionContext

    @classmethod
    def take(cls, step: StepExecution, execution: JobExecution) -> Snapshot:
        counters = {n: getattr(step, n) for n in COUNTERS if n != "rollback_count"}
        return cls(counters, step.context.copy(), execution.context.copy())

    def restore(self, step: StepExecution, execution: JobExecution) -> None:
        for name, value in self.counters.items():
            setattr(step, name, value)
        step.context.restore(self.step_context)
        execution.context.restore(self.job_context)


class ExecutionControl:
    def __init__(self, repository: JobRepository, execution: JobExecution) -> None:
        self.repository = repository
        self.execution = execution
        self._stop = asyncio.Event()
        self._stopping_in_db = False
        self._status_read_at: float | None = None
        self.lock_lost = False

    def request_stop(self) -> None:
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set() or self._stopping_in_db

    def open_unit(self) -> UnitOfWork:
        """A unit of work whose batchdb transaction begins by fencing on the job lock."""
        return UnitOfWork(self.repository.engine, self._fence)

    async def _fence(self, conn: AsyncConnection) -> None:
        renewed = await locks.renew_job_lock(
            conn, self.execution.job_name, self.execution.id, self.repository.clock()
        )
        if not renewed:
            self.lock_lost = True
            raise LockLostError(
                f"execution {self.execution.id} of '{self.execution.job_name}' lost its job "
                "lock to another process; nothing more is committed"
            )

    async def checkpoint(self, uow: UnitOfWork, step: StepExecution) -> None:
        """Save the step's counters and contexts in the unit's transaction; look for a stop.

        The execution's row is read for a stop asked by another process at most every
        :data:`STOP_POLL_SECONDS` (the first checkpoint always reads it): with chunks of a
        few milliseconds, reading it at every chunk was one round trip in eight for a
        request that a person makes. Stops asked in this process are seen at once.
        """
        conn = await uow.batch_connection()
        await self.repository.checkpoint(conn, step, self.execution)
        now = time.monotonic()
        if self._status_read_at is None or now - self._status_read_at >= STOP_POLL_SECONDS:
            status = await self.repository.job_status(self.execution.id, conn)
            self._stopping_in_db = status is BatchStatus.STOPPING
            self._status_read_at = now

    async def refresh_stop_flag(self) -> bool:
        status = await self.repository.job_status(self.execution.id)
        self._stopping_in_db = status is BatchStatus.STOPPING
        return self.stop_requested()

    async def heartbeat(self, interval: float) -> None:
        """Renew the job lock every ``interval`` seconds until cancelled or lost."""
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.repository.renew_lock(self.execution):
                    self.lock_lost = True
                    log.error(
                        "batch.lock.lost", job=self.execution.job_name, execution=self.execution.id
                    )
                    return
            except Exception as exc:
                # A database blip: the next beat or chunk retries; staleness takes minutes.
                # One line per beat, no traceback: a database down for minutes is logged
                # by every beat, and its cause is the same each time.
                log.warning(
                    "batch.heartbeat.failed",
                    execution=self.execution.id,
                    error=f"{type(exc).__name__}: {exc}"[:300],
                )

    @contextlib.asynccontextmanager
    async def heartbeating(self, interval: float) -> AsyncIterator[None]:
        task = asyncio.create_task(self.heartbeat(interval))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
