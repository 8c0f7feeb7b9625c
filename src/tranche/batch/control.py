"""Per-execution control: stop requests, lock fencing and the heartbeat.

A stop may be asked in this process (:meth:`ExecutionControl.request_stop`) or in another
one (the execution's row becomes STOPPING); checkpoints read the row (at most every
:data:`STOP_POLL_SECONDS`), so either is seen after the current chunk, or within that
time plus a chunk. Every unit of work renews this execution's job lock before anything
of it commits: if another process took the lock over (it judged us dead), the renewal
matches no row and the unit is rolled back (:class:`LockLostError`). On MariaDB and
PostgreSQL the renewal is part of the checkpoint statement (one round trip for both; the
checkpoint runs after the writer and before any commit); on SQLite it is the batchdb
transaction's first statement, which takes SQLite's write lock before anything is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from tranche.batch import locks
from tranche.batch.connections import HeldConnections
from tranche.batch.errors import LockLostError
from tranche.batch.model import BatchStatus, JobExecution, StepExecution
from tranche.batch.repository import JobRepository
from tranche.batch.repository_rows import COUNTERS
from tranche.batch.transient import persist
from tranche.batch.uow import UnitOfWork
from tranche.core.logging import get_logger

__all__ = ["STOP_POLL_SECONDS", "ExecutionControl", "Snapshot"]

log = get_logger(__name__)

#: Longest time between two reads of the execution's row for another process's stop.
STOP_POLL_SECONDS = 0.5


@dataclass
class Snapshot:
    """Counters and contexts before a unit of work, restored if it rolls back.

    The contexts are kept as their JSON (``ExecutionContext.saved``), parsed only by a
    restore: a chunk that commits at its first try serialises each context once here.
    """

    counters: dict[str, int]
    step_context: tuple[str, bool]
    job_context: tuple[str, bool]
    #: No unit of work has run since :meth:`take`: nothing to rewind yet.
    fresh: bool = True

    @classmethod
    def take(cls, step: StepExecution, execution: JobExecution) -> Snapshot:
        counters = {n: getattr(step, n) for n in COUNTERS if n != "rollback_count"}
        return cls(counters, step.context.saved(), execution.context.saved())

    def rewind(self, step: StepExecution, execution: JobExecution) -> None:
        """Before a unit of work: back to the snapshot, unless it is the first one since."""
        if self.fresh:
            self.fresh = False
            return
        self.restore(step, execution)

    def restore(self, step: StepExecution, execution: JobExecution) -> None:
        for name, value in self.counters.items():
            setattr(step, name, value)
        step.context.restore_saved(self.step_context)
        execution.context.restore_saved(self.job_context)


class ExecutionControl:
    def __init__(self, repository: JobRepository, execution: JobExecution) -> None:
        self.repository = repository
        self.execution = execution
        self._stop = asyncio.Event()
        self._stopping_in_db = False
        self._status_read_at: float | None = None
        self.lock_lost = False
        #: When a chunk last renewed the lock (monotonic): the heartbeat skips a beat then.
        self._renewed_at: float | None = None
        self._renewal: float | None = None
        #: The fence rides in the checkpoint statement (multiple-table UPDATE, CTEs), or,
        #: for a chunk's unit (:meth:`open_unit` with ``early``), is the first statement of
        #: its batchdb transaction, begun beside the writer (the wait overlaps its work).
        self._fence_in_checkpoint = repository.engine.dialect.name in (
            "mysql",
            "mariadb",
            "postgresql",
        )

    def request_stop(self) -> None:
        self._stop.set()

    def stop_requested(self) -> bool:
        return self._stop.is_set() or self._stopping_in_db

    def open_unit(
        self, connections: HeldConnections | None = None, *, early: bool = False
    ) -> UnitOfWork:
        """A unit of work fenced on the job lock (by its checkpoint, or its first statement).

        ``early`` (MariaDB and PostgreSQL): the fence is the first statement of the unit's
        batchdb transaction, begun at once beside the writer; its row lock on the job's lock
        row is held until batchdb commits, so a takeover waits for this unit or finds it
        rolled back, and the unit commits nothing unless the fence matched. The checkpoint
        can then run beside the other databases' commits (:meth:`UnitOfWork.commit`): two
        round trips fewer per chunk than fence-in-checkpoint, writer and commits in series.
        """
        if early and self._fence_in_checkpoint:
            uow = UnitOfWork(self.repository.engine, self._fence, connections)
            uow.begin_batch_now()
            return uow
        on_begin = None if self._fence_in_checkpoint else self._fence
        return UnitOfWork(self.repository.engine, on_begin, connections)

    async def _fence(self, conn: AsyncConnection) -> None:
        renewed = await locks.renew_job_lock(
            conn, self.execution.job_name, self.execution.id, self.repository.clock()
        )
        if not renewed:
            self._lost()
        self._renewal = time.monotonic()

    def _lost(self) -> None:
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
        fenced = self._fence_in_checkpoint and not uow.fences_on_begin
        if not await self.repository.checkpoint(conn, step, self.execution, fenced=fenced):
            self._lost()
        now = time.monotonic()
        if fenced:
            self._renewal = now
        if self._status_read_at is None or now - self._status_read_at >= STOP_POLL_SECONDS:
            status = await self.repository.job_status(self.execution.id, conn)
            self._stopping_in_db = status is BatchStatus.STOPPING
            self._status_read_at = now

    async def landed(self, step: StepExecution) -> bool:
        """Whether the unit whose commit just failed committed anyway.

        A connection lost during batchdb's COMMIT leaves the outcome unknown: the server
        may have committed before the answer was lost. The checkpoint wrote the step's new
        ``commit_count``; finding it stored means the unit (whose other databases commit
        first) landed, so it must not be rolled back in memory and written again — the
        step's end would otherwise overwrite the landed contexts with older ones (a chunk
        of tokenCleanupJob's counts went missing that way). Retried through transient
        errors like the engine's other bookkeeping; unknown in the end counts as not landed.
        """
        try:
            stored = await persist(
                lambda: self.repository.stored_commit_count(step.id), "commit_outcome"
            )
        except Exception as exc:
            log.warning("batch.commit.outcome_unknown", step=step.step_name, error=str(exc)[:300])
            return False
        return stored == step.commit_count

    def committed(self) -> None:
        """The unit of work committed: its lock renewal counts (the heartbeat may skip)."""
        if self._renewal is not None:
            self._renewed_at, self._renewal = self._renewal, None

    async def refresh_stop_flag(self) -> bool:
        status = await self.repository.job_status(self.execution.id)
        self._stopping_in_db = status is BatchStatus.STOPPING
        return self.stop_requested()

    async def heartbeat(self, interval: float) -> None:
        """Renew the job lock every ``interval`` seconds until cancelled or lost.

        A beat is skipped when a chunk renewed the lock within the last ``interval`` (every
        chunk does, in its checkpoint): the lock is then as fresh as the beat would make
        it. Only committed renewals count (:meth:`committed`).
        """
        while True:
            await asyncio.sleep(interval)
            renewed = self._renewed_at
            if renewed is not None and time.monotonic() - renewed < interval:
                continue
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
