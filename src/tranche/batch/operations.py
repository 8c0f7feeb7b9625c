"""Operator actions on persisted executions: stop and abandon, including dead ones.

"Dead" means no live process holds the execution's job lock (missing, pointing elsewhere,
or not renewed within the stale threshold). Stopping a dead execution ends it STOPPED at
once (nobody else would), and abandoning one is allowed; a live one is stopped
cooperatively by its own process and cannot be abandoned.
"""

from __future__ import annotations

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
from tranche.batch.model import BatchStatus, Clock
from tranche.batch.repository_rows import RUNNING
from tranche.batch.tables import job_execution, job_instance, step_execution

__all__ = ["ExecutionOperations"]


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
