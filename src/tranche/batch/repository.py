"""JobRepository: job instances, executions, step executions and contexts in batchdb.

Works on PostgreSQL, MariaDB and SQLite through SQLAlchemy Core. Creating an execution
claims the job lock in the same transaction (:mod:`tranche.batch.starting`); stop and
abandon live in :mod:`tranche.batch.operations`. Reads for the admin API
(:meth:`JobRepository.find_job_executions`, :meth:`JobRepository.get_job_execution`…) load
parameters, contexts and steps for a whole page in a fixed number of queries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tranche.batch import locks
from tranche.batch.context import ExecutionContext
from tranche.batch.errors import NoSuchJobExecutionError
from tranche.batch.model import (
    MAX_TEXT,
    BatchStatus,
    Clock,
    ExitStatus,
    JobExecution,
    JobInstance,
    JobParameters,
    StepExecution,
    utc_now,
)
from tranche.batch.operations import ExecutionOperations
from tranche.batch.repository_rows import (
    RUNNING,
    load_executions,
    load_steps,
    primary_key,
    step_values,
    write_checkpoint,
    write_context,
)
from tranche.batch.starting import ExecutionStarter, OccurrenceAlreadyFiredError
from tranche.batch.tables import (
    fire_lock,
    job_execution,
    job_instance,
    step_execution,
    step_execution_context,
)

__all__ = ["JobRepository", "OccurrenceAlreadyFiredError"]


class JobRepository(ExecutionStarter, ExecutionOperations):
    """Persisted batch meta-data on one batchdb engine; ``clock`` stamps every time."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    # ----------------------------------------------------------------- runner updates

    async def create_step_execution(
        self, execution: JobExecution, step_name: str, context: ExecutionContext
    ) -> StepExecution:
        now = self.clock()
        step = StepExecution(
            0,
            execution.id,
            step_name,
            BatchStatus.STARTED,
            ExitStatus.EXECUTING,
            create_time=now,
            start_time=now,
            last_updated=now,
            context=context,
        )
        async with self.engine.begin() as conn:
            # A step runs once per job execution, so a row already there was inserted by
            # an earlier try of this call whose COMMIT landed but whose answer was lost
            # (the engine retries its bookkeeping): adopt it rather than insert a twin.
            landed = await conn.execute(
                select(step_execution.c.step_execution_id).where(
                    step_execution.c.job_execution_id == execution.id,
                    step_execution.c.step_name == step_name,
                )
            )
            existing = landed.scalar()
            if existing is not None:
                step.id = int(existing)
            else:
                values = step_values(step)
                values.update(version=0, step_name=step_name, job_execution_id=execution.id)
                result = await conn.execute(insert(step_execution).values(**values))
                step.id = primary_key(result)
                await write_context(conn, "step", step.id, context, insert_row=True)
        execution.step_executions.append(step)
        return step

    async def update_step_execution(self, conn: AsyncConnection, step: StepExecution) -> None:
        step.last_updated = self.clock()
        await conn.execute(
            update(step_execution)
            .where(step_execution.c.step_execution_id == step.id)
            .values(**step_values(step), version=step_execution.c.version + 1)
        )
        if step.context.dirty:
            await write_context(conn, "step", step.id, step.context)

    async def checkpoint(
        self,
        conn: AsyncConnection,
        step: StepExecution,
        execution: JobExecution,
        *,
        fenced: bool = False,
    ) -> bool:
        """A chunk's checkpoint (the step's row and both contexts), in one round trip.

        ``fenced``: the same statement renews the job lock and writes only if the lock is
        still ``execution``'s; ``False`` then means it is not (see :func:`write_checkpoint`).
        """
        step.last_updated = now = self.clock()
        return await write_checkpoint(conn, step, execution, now if fenced else None)

    async def update_job_execution(self, conn: AsyncConnection, execution: JobExecution) -> None:
        execution.last_updated = self.clock()
        await conn.execute(
            update(job_execution)
            .where(job_execution.c.job_execution_id == execution.id)
            .values(
                status=execution.status.value,
                exit_code=execution.exit_status.exit_code,
                exit_message=execution.exit_status.exit_description[:MAX_TEXT],
                start_time=execution.start_time,
                end_time=execution.end_time,
                last_updated=execution.last_updated,
                version=job_execution.c.version + 1,
            )
        )
        if execution.context.dirty:
            await write_context(conn, "job", execution.id, execution.context)

    async def save_job_context(self, conn: AsyncConnection, execution: JobExecution) -> None:
        """Only the context: the status column belongs to stop requests and :meth:`finish`."""
        if execution.context.dirty:
            await write_context(conn, "job", execution.id, execution.context)

    async def mark_started(self, execution: JobExecution) -> BatchStatus:
        """STARTING → STARTED unless a stop came first; returns the status now stored."""
        now = self.clock()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(job_execution)
                .where(
                    job_execution.c.job_execution_id == execution.id,
                    job_execution.c.status == BatchStatus.STARTING.value,
                )
                .values(status=BatchStatus.STARTED.value, start_time=now, last_updated=now)
            )
            execution.start_time = now
            if result.rowcount == 1:
                execution.status = BatchStatus.STARTED
            else:
                execution.status = await self.job_status(execution.id, conn)
        return execution.status

    async def job_status(
        self, execution_id: int, conn: AsyncConnection | None = None
    ) -> BatchStatus:
        stmt = select(job_execution.c.status).where(
            job_execution.c.job_execution_id == execution_id
        )
        if conn is None:
            async with self.engine.connect() as own:
                status = (await own.execute(stmt)).scalar()
        else:
            status = (await conn.execute(stmt)).scalar()
        if status is None:
            raise NoSuchJobExecutionError(execution_id)
        return BatchStatus(status)

    async def stored_commit_count(self, step_execution_id: int) -> int | None:
        """The step's ``commit_count`` as batchdb has it (None: no such step), on a fresh
        connection: how the chunk executor learns whether a COMMIT whose answer was lost
        landed (the count is written only by checkpoints and the step's end)."""
        stmt = select(step_execution.c.commit_count).where(
            step_execution.c.step_execution_id == step_execution_id
        )
        async with self.engine.connect() as conn:
            value = (await conn.execute(stmt)).scalar()
        return None if value is None else int(value)

    async def renew_lock(self, execution: JobExecution) -> bool:
        async with self.engine.begin() as conn:
            return await locks.renew_job_lock(conn, execution.job_name, execution.id, self.clock())

    async def finish(self, execution: JobExecution) -> None:
        """Record the end of ``execution`` and release its job lock, in one transaction."""
        async with self.engine.begin() as conn:
            await self.update_job_execution(conn, execution)
            await locks.release_job_lock(conn, execution.job_name, execution.id)

    # ----------------------------------------------------------------- reads

    async def get_job_execution(self, execution_id: int) -> JobExecution | None:
        async with self.engine.connect() as conn:
            found = await load_executions(
                conn, job_execution.c.job_execution_id == execution_id, with_steps=True
            )
        return found[0] if found else None

    async def require_job_execution(self, execution_id: int) -> JobExecution:
        execution = await self.get_job_execution(execution_id)
        if execution is None:
            raise NoSuchJobExecutionError(execution_id)
        return execution

    async def find_job_executions(
        self, job_name: str | None = None, *, offset: int = 0, limit: int = 20
    ) -> list[JobExecution]:
        """Newest first, with their step executions."""
        where = job_instance.c.job_name == job_name if job_name is not None else None
        async with self.engine.connect() as conn:
            return await load_executions(conn, where, with_steps=True, offset=offset, limit=limit)

    async def count_job_executions(self, job_name: str | None = None) -> int:
        stmt = select(func.count()).select_from(job_execution.join(job_instance))
        if job_name is not None:
            stmt = stmt.where(job_instance.c.job_name == job_name)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def last_job_execution(
        self, job_name: str, parameters: JobParameters | None = None
    ) -> JobExecution | None:
        where: Any = job_instance.c.job_name == job_name
        if parameters is not None:
            where = where & (job_instance.c.job_key == parameters.job_key())
        async with self.engine.connect() as conn:
            found = await load_executions(conn, where, with_steps=True, limit=1)
        return found[0] if found else None

    async def find_running_executions(self, job_name: str | None = None) -> list[JobExecution]:
        where: Any = job_execution.c.status.in_(RUNNING)
        if job_name is not None:
            where = where & (job_instance.c.job_name == job_name)
        async with self.engine.connect() as conn:
            return await load_executions(conn, where, with_steps=True)

    async def last_fire_time(self, job_name: str) -> datetime | None:
        """The latest scheduled occurrence of ``job_name`` any replica fired (its fire lock)."""
        async with self.engine.connect() as conn:
            value = (
                await conn.execute(
                    select(func.max(fire_lock.c.fire_time)).where(fire_lock.c.job_name == job_name)
                )
            ).scalar()
        if value is None:
            return None
        # MAX() loses the column type on some engines: normalise to aware UTC.
        found: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return found if found.tzinfo else found.replace(tzinfo=UTC)

    async def job_names(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(job_instance.c.job_name).distinct().order_by(job_instance.c.job_name)
            )
            return [r[0] for r in rows]

    async def get_job_instance(
        self, job_name: str, parameters: JobParameters
    ) -> JobInstance | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(job_instance.c.job_instance_id).where(
                        job_instance.c.job_name == job_name,
                        job_instance.c.job_key == parameters.job_key(),
                    )
                )
            ).first()
        return None if row is None else JobInstance(int(row[0]), job_name, parameters.job_key())

    async def last_step_execution(self, instance_id: int, step_name: str) -> StepExecution | None:
        """The latest execution of ``step_name`` in any execution of the instance."""
        async with self.engine.connect() as conn:
            steps = await load_steps(
                conn,
                (step_execution.c.step_name == step_name)
                & step_execution.c.job_execution_id.in_(
                    select(job_execution.c.job_execution_id).where(
                        job_execution.c.job_instance_id == instance_id
                    )
                ),
                newest_first=True,
                limit=1,
            )
        return steps[0] if steps else None

    async def step_context(self, step_execution_id: int) -> ExecutionContext:
        async with self.engine.connect() as conn:
            text = (
                await conn.execute(
                    select(step_execution_context.c.serialized_context).where(
                        step_execution_context.c.step_execution_id == step_execution_id
                    )
                )
            ).scalar()
        return ExecutionContext.from_json(text)
