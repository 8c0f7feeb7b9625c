"""A process whose job lock was taken over commits nothing more, on every batchdb.

On MariaDB and PostgreSQL the lock fence rides in the chunk's checkpoint statement (one
round trip for both), after the writer and before any commit; on SQLite it is the batchdb
transaction's first statement. Either way the zombie's late chunk is refused, in batchdb
and in the other database its writer wrote to, and the new owner finishes the job. So it
is when that other database joins batchdb's transaction (MariaDB, one server and account).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, Injector, batch_engine_for, written, written_values
from tests.fixtures.servers import DatabaseFactory
from tranche.batch import BatchStatus, ChunkStep, Job, JobLauncher, JobRepository, ListReader
from tranche.batch.uow import StepContext


@pytest.fixture
async def owner_db(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """Another database the writer writes to (the owner's, for a doctoral job)."""
    engine = await batch_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'owner.db'}")
    yield engine
    await engine.dispose()


def job_writing_both(
    name: str, owner: AsyncEngine, injector: Injector, *, joined: bool = False
) -> Job:
    async def write(items: Sequence[int], ctx: StepContext) -> None:
        rows = [{"job": name, "value": v} for v in items]
        await (await ctx.session()).execute(insert(written), rows)
        await (await ctx.session(owner, join_checkpoint=joined)).execute(insert(written), rows)

    step = ChunkStep(
        "countStep",
        reader=ListReader(list(range(8))),
        processor=injector.process,
        writer=write,
        chunk_size=2,
        joined=owner if joined else None,
    )
    return Job(name, [step])


async def test_a_zombie_whose_lock_was_taken_over_commits_no_further_chunk(
    any_engine: AsyncEngine, owner_db: AsyncEngine
) -> None:
    await zombie_then_rescuer(any_engine, owner_db, joined=False)


async def test_a_zombie_writing_in_batchdbs_transaction_commits_no_further_chunk(
    mariadb_factory: DatabaseFactory,
) -> None:
    """The owner database on batchdb's server and account: one transaction per chunk."""
    batchdb = await batch_engine_for(await mariadb_factory("fence"))
    owner = await batch_engine_for(await mariadb_factory("owner"))
    try:
        await zombie_then_rescuer(batchdb, owner, joined=True)
    finally:
        await batchdb.dispose()
        await owner.dispose()


async def zombie_then_rescuer(
    any_engine: AsyncEngine, owner_db: AsyncEngine, *, joined: bool
) -> None:
    in_chunk = asyncio.Event()
    resume = asyncio.Event()

    async def pause_at_4(item: int) -> None:
        if item == 4 and not resume.is_set():
            in_chunk.set()
            await resume.wait()

    job = job_writing_both("fencedJob", owner_db, Injector(on_item=pause_at_4), joined=joined)
    zombie = JobLauncher(JobRepository(any_engine), settings=SETTINGS, owner="zombie")
    zombie_id = await zombie.start(job)
    await in_chunk.wait()  # two chunks committed, the third one paused mid-way

    later = datetime.now(UTC) + timedelta(minutes=5)
    rescuer = JobLauncher(JobRepository(any_engine, clock=lambda: later), [job], settings=SETTINGS)
    assert await rescuer.stop(zombie_id) is BatchStatus.STOPPED  # judged dead: ends at once
    restarted = await rescuer.restart(zombie_id)
    resume.set()

    zombie_end = await zombie.wait(zombie_id)
    assert zombie_end.status is BatchStatus.FAILED
    assert "lost its job lock" in zombie_end.exit_status.exit_description
    assert (await rescuer.wait(restarted)).status is BatchStatus.COMPLETED
    # Every item once: the zombie's paused chunk [4, 5] was written by the new owner only.
    assert await written_values(any_engine, "fencedJob") == list(range(8))
    assert await written_values(owner_db, "fencedJob") == list(range(8))
    await zombie.close()
    await rescuer.close()
