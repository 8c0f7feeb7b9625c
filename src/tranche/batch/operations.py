"""Operator actions on persisted executions: stop, abandon and crash recovery.

"Dead" means no live process holds the execution's job lock (missing, pointing elsewhere,
or not renewed within the stale threshold). Stopping a dead execution ends it STOPPED at
once (nobody else would), and abandoning one is allowed; a live one is stopped
cooperatively by its own process and cannot be abandoned.

:meth:`ExecutionOperations.fail_dead_executions` is crash recovery: every execution still
marked running whose process is dead (stale heartbeat, lock gone, or a process of this
host that no longer exists) is marked FAILED with exit code ``CRASHED`` and its lock
released. The update is conditional on the running status, so of several replicas
recovering at once exactly one reports each execution (and runs its listeners).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tranche.batch import locks
from tranche.batch.errors import (
    JobExecutionAlreadyRunningError,
    JobExecutionNotRunningError,
    JobRestartError,
    NoSuchJobExecutionError,
)
from tranche.batch.model import MAX_TEXT, BatchStatus, Clock
from tranche.batch.repository_rows import RUNNING
from tranche.batch.tables import job_execution, job_instance, job_lock, step_execution

__all__ = ["CRASHED", "ExecutionOperations", "Recovered"]

#: Exit code of an execution whose process died while it ran.
CRASHED = "CRASHED"


@dataclass(frozen=True)
class Recovered:
    """An execution crash recovery marked FAILED, and why it was judged dead."""

    execution_id: int
    job_name: str
    reason: str


class ExecutionOperations:
    """The repository's half that applies operator actions (mixed into ``JobRepository``)."""

    engine: AsyncEngine
    clock: Clock

    async def request_stop(self, execution_id: int, stale_after: timedelta) -> BatchStatus:
        """Mark a running execution STOPPING (its process stops after the current chunk).

        If no live process holds the execution's lock (it crashed), nobody would honour the
        request, so the execution is ended STOPPED at once and its lock released.
        """
        now = self.clock()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(job_execution)
                .where(
                    job_execution.c.job_execution_id == execution_id,
                    job_execution.c.status.in_(
                        (BatchStatus.STARTING.value, BatchStatus.STARTED.value)
                    ),
                )
                .values(status=BatchStatus.STOPPING.value, last_updated=now)
            )
            status, job_name = await self._status_and_name(conn, execution_id)
            if not status.is_running:
                raise JobExecutionNotRunningError(execution_id, status.value)
            if await self._alive(conn, job_name, execution_id, now - stale_after):
                return BatchStatus.STOPPING
            await self._end_dead(conn, job_name, execution_id, BatchStatus.STOPPED, now)
            return BatchStatus.STOPPED

    async def abandon(self, execution_id: int, stale_after: timedelta) -> None:
        """STOPPED or FAILED → ABANDONED: the instance will never be restarted."""
        now = self.clock()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(job_execution)
                .where(
                    job_execution.c.job_execution_id == execution_id,
                    job_execution.c.status.in_(
                        (BatchStatus.STOPPED.value, BatchStatus.FAILED.value)
                    ),
                )
                .values(status=BatchStatus.ABANDONED.value, last_updated=now)
            )
            if result.rowcount == 1:
                return
            status, job_name = await self._status_and_name(conn, execution_id)
            if status is BatchStatus.ABANDONED:
                return
            if status is BatchStatus.COMPLETED:
                raise JobRestartError(
                    f"job execution {execution_id} is COMPLETED; only STOPPED or FAILED "
                    "executions (or running ones whose process died) can be abandoned"
                )
            if await self._alive(conn, job_name, execution_id, now - stale_after):
                raise JobExecutionAlreadyRunningError(job_name, execution_id)
            await self._end_dead(conn, job_name, execution_id, BatchStatus.ABANDONED, now)

    async def fail_dead_executions(
        self,
        stale_after: timedelta,
        owner_is_dead: Callable[[str], bool] = lambda _owner: False,
    ) -> list[Recovered]:
        """Mark FAILED (``CRASHED``) every running execution whose process is dead."""
        async with self.engine.connect() as conn:
            candidates = [
                (int(r[0]), str(r[1]))
                for r in await conn.execute(
                    select(job_execution.c.job_execution_id, job_instance.c.job_name)
                    .join(job_instance)
                    .where(job_execution.c.status.in_(RUNNING))
                    .order_by(job_execution.c.job_execution_id)
                )
            ]
        recovered = []
        for execution_id, job_name in candidates:
            found = await self._fail_if_dead(execution_id, job_name, stale_after, owner_is_dead)
            if found is not None:
                recovered.append(found)
        return recovered

    async def _fail_if_dead(
        self,
        execution_id: int,
        job_name: str,
        stale_after: timedelta,
        owner_is_dead: Callable[[str], bool],
    ) -> Recovered | None:
        now = self.clock()
        async with self.engine.begin() as conn:
            # A no-op write first: the lock row (if any) is ours to read until the commit, so a
            # heartbeat cannot renew it between our judgement and the update (SQLite: the
            # write lock before any read).
            await conn.execute(
                update(job_lock)
                .where(job_lock.c.job_name == job_name)
                .values(job_name=job_lock.c.job_name)
            )
            holder = await locks.lock_holder(conn, job_name, for_update=True)
            reason = _death(holder, execution_id, now - stale_after, owner_is_dead)
            if reason is None:
                return None
            message = (
                f"crashed: {reason}. The process running this execution died (killed, out of "
                "memory or host lost); work committed before it is kept. Restart the "
                "execution to resume after its last committed chunk."
            )[:MAX_TEXT]
            values = {
                "status": BatchStatus.FAILED.value,
                "exit_code": CRASHED,
                "exit_message": message,
                "end_time": now,
                "last_updated": now,
            }
            result = await conn.execute(
                update(job_execution)
                .where(
                    job_execution.c.job_execution_id == execution_id,
                    job_execution.c.status.in_(RUNNING),
                )
                .values(**values)
            )
            if result.rowcount != 1:
                return None  # another replica recovered it first
            await conn.execute(
                update(step_execution)
                .where(
                    step_execution.c.job_execution_id == execution_id,
                    step_execution.c.status.in_(RUNNING),
                )
                .values(**values)
            )
            await locks.release_job_lock(conn, job_name, execution_id)
        return Recovered(execution_id, job_name, reason)

    async def _status_and_name(
        self, conn: AsyncConnection, execution_id: int
    ) -> tuple[BatchStatus, str]:
        row = (
            await conn.execute(
                select(job_execution.c.status, job_instance.c.job_name)
                .join(job_instance)
                .where(job_execution.c.job_execution_id == execution_id)
            )
        ).first()
        if row is None:
            raise NoSuchJobExecutionError(execution_id)
        return BatchStatus(row[0]), str(row[1])

    async def _alive(
        self, conn: AsyncConnection, job_name: str, execution_id: int, stale_before: datetime
    ) -> bool:
        holder = await locks.lock_holder(conn, job_name, for_update=True)
        return (
            holder is not None
            and holder.job_execution_id == execution_id
            and holder.renewed_at >= stale_before
        )

    async def _end_dead(
        self,
        conn: AsyncConnection,
        job_name: str,
        execution_id: int,
        status: BatchStatus,
        now: datetime,
    ) -> None:
        message = "ended by an operator: no live process held this execution's job lock"
        values = {
            "status": status.value,
            "exit_code": status.value,
            "exit_message": message,
            "end_time": now,
            "last_updated": now,
        }
        await conn.execute(
            update(job_execution)
            .where(job_execution.c.job_execution_id == execution_id)
            .values(**values)
        )
        await conn.execute(
            update(step_execution)
            .where(
                step_execution.c.job_execution_id == execution_id,
                step_execution.c.status.in_(RUNNING),
            )
            .values(**values)
        )
        await locks.release_job_lock(conn, job_name, execution_id)


def _death(
    holder: locks.LockHolder | None,
    execution_id: int,
    stale_before: datetime,
    owner_is_dead: Callable[[str], bool],
) -> str | None:
    """Why the execution's process is dead, or None if it may be alive."""
    if holder is None or holder.job_execution_id != execution_id:
        return "its job lock is gone (no process holds it)"
    if holder.renewed_at < stale_before:
        return (
            f"process {holder.owner} stopped renewing its job lock at "
            f"{holder.renewed_at.isoformat(timespec='seconds')}"
        )
    if owner_is_dead(holder.owner):
        return f"process {holder.owner} no longer exists on this host"
    return None
