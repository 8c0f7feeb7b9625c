"""The repository and the schema helpers on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import POOL, SETTINGS, Injector, counting_job, written_values
from tranche.batch import (
    BatchStatus,
    JobLauncher,
    JobParameter,
    JobParameters,
    JobRepository,
    StepContext,
    add_batch_tables,
    drop_batch_tables,
)
from tranche.batch.job import Job, TaskletStep
from tranche.batch.tables import TABLE_NAMES
from tranche.core.db import create_engine


async def test_executions_round_trip_with_typed_parameters_and_contexts(
    any_engine: AsyncEngine,
) -> None:
    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    params = JobParameters(
        {
            "run.id": 7,
            "ratio": 0.25,
            "name": "émile",
            "flag": True,
            "day": date(2024, 2, 29),
            "at": datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
            "note": JobParameter("not identifying", identifying=False),
        }
    )

    async def remember(ctx: StepContext) -> None:
        ctx.job_context["stats"] = {"total": Decimal("12.50"), "since": date(2024, 1, 1)}
        ctx.step_context["last"] = datetime(2024, 3, 1, tzinfo=UTC)

    job = Job("roundTripJob", [TaskletStep("rememberStep", remember)])
    ran = await launcher.run(job, params)
    repo = launcher.repository
    stored = await repo.require_job_execution(ran.id)
    assert stored.parameters == params
    assert stored.parameters.job_key() == params.job_key()
    assert stored.context["stats"] == {"total": Decimal("12.50"), "since": date(2024, 1, 1)}
    assert stored.step_executions[0].context["last"] == datetime(2024, 3, 1, tzinfo=UTC)
    assert stored.create_time is not None and stored.create_time.tzinfo is UTC

    failed = await launcher.run(
        counting_job("pagedJob", 6, 2, Injector(fail_at={3})), {"run.id": 1}
    )
    assert failed.status is BatchStatus.FAILED
    await launcher.run("pagedJob", {"run.id": 1})
    for run_id in (2, 3):
        await launcher.run("pagedJob", {"run.id": run_id})
    assert await repo.count_job_executions("pagedJob") == 4
    assert await repo.count_job_executions() == 5
    page = await repo.find_job_executions("pagedJob", offset=1, limit=2)
    assert [e.parameters.value("run.id") for e in page] == [2, 1]
    assert all(e.step_executions for e in page)
    assert await repo.job_names() == ["pagedJob", "roundTripJob"]
    last = await repo.last_job_execution("pagedJob", JobParameters({"run.id": 1}))
    assert last is not None and last.status is BatchStatus.COMPLETED
    assert await repo.find_running_executions() == []
    assert await written_values(any_engine, "pagedJob") == [0, 1, 2, 3, 4, 5] * 3


def _migrate(conn: Connection, up: bool) -> list[str]:
    op = Operations(MigrationContext.configure(conn))
    if up:
        add_batch_tables(op)
    else:
        drop_batch_tables(op)
    return sorted(inspect(conn).get_table_names())


async def test_alembic_helpers_create_and_drop_the_schema(any_database_url: str) -> None:
    engine = create_engine(any_database_url, POOL)
    try:
        async with engine.begin() as conn:
            names = await conn.run_sync(_migrate, True)
        assert set(TABLE_NAMES) <= set(names)
        assert "batch_job_instance" in names and "batch_fire_lock" in names
        launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
        ran = await launcher.run(
            Job("migratedJob", [TaskletStep("t", lambda ctx: _noop())]), {"run.id": 1}
        )
        assert ran.status is BatchStatus.COMPLETED
        async with engine.begin() as conn:
            left = await conn.run_sync(_migrate, False)
        assert not set(TABLE_NAMES) & set(left)
    finally:
        await engine.dispose()


async def _noop() -> None:
    return None
