"""Several launchers (separate engines, as separate replicas) racing on one real batchdb."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, batch_engine_for
from tests.fixtures.servers import DatabaseFactory
from tranche.batch import (
    BatchStatus,
    Job,
    JobExecutionAlreadyRunningError,
    JobLauncher,
    JobRepository,
    JobScheduler,
    Schedule,
    StepContext,
    TaskletStep,
)
from tranche.batch.tables import fire_lock, job_execution

REPLICAS = 4


@pytest.fixture(params=["postgres", "mariadb", "sqlite"])
async def replicas(
    request: pytest.FixtureRequest,
    postgres_factory: DatabaseFactory,
    mariadb_factory: DatabaseFactory,
    tmp_path: Path,
) -> AsyncIterator[list[JobLauncher]]:
    """Separate engines: as separate processes (SQLite: e.g. the CLI beside the service)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    else:
        factory = postgres_factory if request.param == "postgres" else mariadb_factory
        url = await factory("race")
    engines: list[AsyncEngine] = [await batch_engine_for(url) for _ in range(REPLICAS)]
    launchers = [
        JobLauncher(JobRepository(e), settings=SETTINGS, owner=f"replica-{i}")
        for i, e in enumerate(engines)
    ]
    yield launchers
    for launcher in launchers:
        await launcher.close()
    for engine in engines:
        await engine.dispose()


async def test_exactly_one_of_racing_launchers_runs_the_job(replicas: list[JobLauncher]) -> None:
    release = asyncio.Event()

    async def hold(ctx: StepContext) -> None:
        await release.wait()

    job = Job("racedJob", [TaskletStep("holdStep", hold)])
    for round_no in range(1, 6):
        release.clear()
        # Different parameters per replica: the lock is per job, not per instance.
        outcomes = await asyncio.gather(
            *(
                launcher.start(job, {"run.id": round_no * 10 + i})
                for i, launcher in enumerate(replicas)
            ),
            return_exceptions=True,
        )
        started = [o for o in outcomes if isinstance(o, int)]
        refused = [o for o in outcomes if isinstance(o, JobExecutionAlreadyRunningError)]
        assert len(started) == 1, outcomes
        assert len(refused) == REPLICAS - 1, outcomes
        engine = replicas[0].repository.engine
        async with engine.connect() as conn:
            running = (
                await conn.execute(
                    select(func.count()).where(job_execution.c.status.in_(["STARTING", "STARTED"]))
                )
            ).scalar_one()
        assert running == 1
        release.set()
        winner = next(r for r, o in zip(replicas, outcomes, strict=True) if isinstance(o, int))
        assert (await winner.wait(started[0])).status is BatchStatus.COMPLETED
    total = await replicas[0].repository.count_job_executions("racedJob")
    assert total == 5


async def test_racing_schedulers_fire_each_occurrence_once(replicas: list[JobLauncher]) -> None:
    now = {"t": datetime(2025, 3, 1, 23, 0, 0, tzinfo=UTC)}

    def clock() -> datetime:
        return now["t"]

    async def work(ctx: StepContext) -> None:
        return None

    job = Job("scheduledJob", [TaskletStep("workStep", work)])
    schedulers = []
    for launcher in replicas:
        launcher.register(job)
        launcher.repository.clock = clock
        schedulers.append(JobScheduler(launcher, [Schedule(job.name, "0 0 23 * * ?")], clock=clock))
    for day in range(3):
        now["t"] = datetime(2025, 3, 1 + day, 23, 0, 1, tzinfo=UTC)
        rounds = await asyncio.gather(*(s.tick() for s in schedulers))
        outcomes = sorted(f.outcome for firings in rounds for f in firings)
        assert outcomes == ["fired-elsewhere"] * (REPLICAS - 1) + ["started"], outcomes
        for launcher, firings in zip(replicas, rounds, strict=True):
            for firing in firings:
                if firing.execution_id is not None:
                    done = await launcher.wait(firing.execution_id)
                    assert done.status is BatchStatus.COMPLETED
        now["t"] += timedelta(minutes=1)
    engine = replicas[0].repository.engine
    async with engine.connect() as conn:
        locks = (await conn.execute(select(func.count()).select_from(fire_lock))).scalar_one()
    assert locks == 3
    assert await replicas[0].repository.count_job_executions("scheduledJob") == 3
