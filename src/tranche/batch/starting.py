"""Creating a job execution: the job lock, the instance checks and the insert, atomically.

Spring Batch's rules: a FAILED or STOPPED instance with the same identifying parameters is
restarted (its job context carries over); a COMPLETED or ABANDONED one is refused; a job
that is running anywhere is refused. The lock row is claimed first in the transaction, so
concurrent launchers serialise on it; see :mod:`tranche.batch.locks` for stale locks.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, cast, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tranche.batch import locks
from tranche.batch.context import ExecutionContext
from tranche.batch.errors import (
    BatchError,
    JobExecutionAlreadyRunningError,
    JobInstanceAlreadyCompleteError,
    JobRestartError,
)
from tranche.batch.model import (
    MAX_TEXT,
    BatchStatus,
    Clock,
    ExitStatus,
    JobExecution,
    JobInstance,
    JobParameters,
)
from tranche.batch.repository_rows import RUNNING, load_executions, primary_key, write_context
from tranche.batch.tables import (
    job_execution,
    job_execution_params,
    job_instance,
    step_execution,
)
from tranche.core.logging import get_logger

__all__ = ["ExecutionStarter", "OccurrenceAlreadyFiredError"]

log = get_logger(__name__)


class OccurrenceAlreadyFiredError(BatchError):
    """Another replica already claimed this scheduled occurrence."""


class ExecutionStarter:
    """The repository's half that creates executions (mixed into ``JobRepository``)."""

    engine: AsyncEngine
    clock: Clock

    async def create_job_execution(
        self,
        job_name: str,
        parameters: JobParameters,
        *,
        owner: str,
        stale_after: timedelta,
        restartable: bool = True,
        restart_of: int | None = None,
        next_instance: bool = False,
        occurrence: datetime | None = None,
    ) -> JobExecution:
        """Claim the job lock and create a STARTING execution, or raise why not.

        A FAILED or STOPPED instance with the same identifying parameters is restarted (its
        job context carries over); a COMPLETED or ABANDONED one is refused. ``next_instance``
        adds ``run.id`` = highest so far + 1; ``occurrence`` also claims the fire lock.
        """
        # Insert the lock row; if it exists, a fresh transaction tries to take a stale one
        # over; if it vanished meanwhile (released), insert again.
        takeover = False
        for _attempt in range(10):
            try:
                async with self.engine.begin() as conn:
                    return await self._create(
                        conn, job_name, parameters, owner, stale_after, restartable,
                        restart_of, next_instance, occurrence, takeover,
                    )  # fmt: skip
            except _LockConflict:
                takeover = True
            except _LockRowVanished:
                takeover = False
        raise JobExecutionAlreadyRunningError(job_name)

    async def _create(
        self,
        conn: AsyncConnection,
        job_name: str,
        parameters: JobParameters,
        owner: str,
        stale_after: timedelta,
        restartable: bool,
        restart_of: int | None,
        next_instance: bool,
        occurrence: datetime | None,
        takeover: bool,
    ) -> JobExecution:
        now = self.clock()
        if occurrence is not None:
            try:
                await locks.claim_fire_lock(conn, job_name, occurrence, owner, now)
            except IntegrityError:
                raise OccurrenceAlreadyFiredError(
                    f"{job_name} at {occurrence.isoformat()} was fired by another replica"
                ) from None
        await self._claim_job_lock(conn, job_name, owner, now, now - stale_after, takeover)
        if next_instance:
            parameters = parameters.with_added("run.id", await self._next_run_id(conn, job_name))
        key = parameters.job_key()
        instance_row = (
            await conn.execute(
                select(job_instance.c.job_instance_id).where(
                    job_instance.c.job_name == job_name, job_instance.c.job_key == key
                )
            )
        ).first()
        context = ExecutionContext()
        if instance_row is None:
            if restart_of is not None:
                raise JobRestartError(f"execution {restart_of} has no job instance to restart")
            result = await conn.execute(
                insert(job_instance).values(version=0, job_name=job_name, job_key=key)
            )
            instance = JobInstance(primary_key(result), job_name, key)
        else:
            instance = JobInstance(int(instance_row[0]), job_name, key)
            previous = await self._last_execution_of_instance(conn, instance.id)
            if previous is not None:
                self._check_restart(previous, parameters, restartable, restart_of)
                context = previous.context.copy()
        execution = await self._insert_execution(conn, instance, parameters, context, now)
        await locks.set_lock_execution(conn, job_name, owner, execution.id)
        if occurrence is not None:
            await locks.set_fire_lock_execution(conn, job_name, occurrence, execution.id)
        return execution

    async def _claim_job_lock(
        self,
        conn: AsyncConnection,
        job_name: str,
        owner: str,
        now: datetime,
        stale: datetime,
        takeover: bool,
    ) -> None:
        if not takeover:
            try:
                await locks.insert_job_lock(conn, job_name, owner, now)
            except IntegrityError:
                raise _LockConflict from None
            # Holding the lock, any execution of this job still marked running is dead (its
            # lock row was removed by hand, say): fail it so the instance can restart.
            await self._fail_dead_executions(
                conn, job_name, now, "its job lock row is gone; marked FAILED so it can restart"
            )
            return
        dead = await locks.take_over_stale_job_lock(conn, job_name, owner, now, stale)
        if dead is None:
            raise _LockRowVanished
        log.warning(
            "batch.lock.taken_over",
            job=job_name,
            dead_execution=dead.job_execution_id,
            dead_owner=dead.owner,
            last_heartbeat=dead.renewed_at.isoformat(),
        )
        await self._fail_dead_executions(
            conn,
            job_name,
            now,
            f"process {dead.owner} stopped renewing the job lock at "
            f"{dead.renewed_at.isoformat()}; marked FAILED so the execution can be restarted",
        )

    async def _fail_dead_executions(
        self, conn: AsyncConnection, job_name: str, now: datetime, reason: str
    ) -> None:
        """Executions of ``job_name`` still marked running belong to a dead process."""
        ids = [
            r[0]
            for r in await conn.execute(
                select(job_execution.c.job_execution_id)
                .join(job_instance)
                .where(job_instance.c.job_name == job_name, job_execution.c.status.in_(RUNNING))
            )
        ]
        if not ids:
            return
        message = reason[:MAX_TEXT]
        failed = {"status": BatchStatus.FAILED.value, "exit_code": "FAILED", "end_time": now}
        await conn.execute(
            update(job_execution)
            .where(job_execution.c.job_execution_id.in_(ids))
            .values(**failed, exit_message=message, last_updated=now)
        )
        await conn.execute(
            update(step_execution)
            .where(step_execution.c.job_execution_id.in_(ids), step_execution.c.status.in_(RUNNING))
            .values(**failed, exit_message=message, last_updated=now)
        )

    async def _next_run_id(self, conn: AsyncConnection, job_name: str) -> int:
        highest = (
            await conn.execute(
                select(func.max(cast(job_execution_params.c.parameter_value, BigInteger)))
                .select_from(job_execution_params.join(job_execution).join(job_instance))
                .where(
                    job_instance.c.job_name == job_name,
                    job_execution_params.c.parameter_name == "run.id",
                    job_execution_params.c.parameter_type == "LONG",
                )
            )
        ).scalar()
        return int(highest or 0) + 1

    def _check_restart(
        self,
        previous: JobExecution,
        parameters: JobParameters,
        restartable: bool,
        restart_of: int | None,
    ) -> None:
        status = previous.status
        if status in (BatchStatus.COMPLETED, BatchStatus.ABANDONED):
            raise JobInstanceAlreadyCompleteError(
                previous.job_name, parameters.describe(), status.value
            )
        if restart_of is not None and restart_of != previous.id:
            raise JobRestartError(
                f"execution {restart_of} is not the latest of its job instance "
                f"(execution {previous.id} is); restart that one"
            )
        if not restartable:
            raise JobRestartError(
                f"job '{previous.job_name}' is not restartable and its instance "
                f"{parameters.describe()} already ran (execution {previous.id}, {status.value})"
            )

    async def _insert_execution(
        self,
        conn: AsyncConnection,
        instance: JobInstance,
        parameters: JobParameters,
        context: ExecutionContext,
        now: datetime,
    ) -> JobExecution:
        result = await conn.execute(
            insert(job_execution).values(
                version=0,
                job_instance_id=instance.id,
                create_time=now,
                status=BatchStatus.STARTING.value,
                exit_code=ExitStatus.UNKNOWN.exit_code,
                exit_message="",
                last_updated=now,
            )
        )
        execution_id = primary_key(result)
        if parameters:
            await conn.execute(
                insert(job_execution_params),
                [
                    {
                        "job_execution_id": execution_id,
                        "parameter_name": name,
                        "parameter_type": p.type_name,
                        "parameter_value": p.to_text(),
                        "identifying": "Y" if p.identifying else "N",
                    }
                    for name, p in parameters.items()
                ],
            )
        await write_context(conn, "job", execution_id, context, insert_row=True)
        return JobExecution(
            execution_id,
            instance,
            parameters,
            BatchStatus.STARTING,
            ExitStatus.UNKNOWN,
            create_time=now,
            last_updated=now,
            context=context,
        )

    async def _last_execution_of_instance(
        self, conn: AsyncConnection, instance_id: int
    ) -> JobExecution | None:
        found = await load_executions(
            conn, job_execution.c.job_instance_id == instance_id, with_steps=False, limit=1
        )
        return found[0] if found else None


class _LockConflict(Exception):
    """The job lock row exists; retry in a new transaction as a takeover."""


class _LockRowVanished(Exception):
    """The lock row was released between our insert and takeover attempts; insert again."""
