"""A chunk's checkpoint (one statement on MariaDB and PostgreSQL) stores what a restart reads."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tranche.batch import JobParameters, JobRepository
from tranche.batch.context import ExecutionContext


async def test_checkpoint_saves_counters_and_both_contexts_and_only_this_step(
    any_engine: AsyncEngine,
) -> None:
    repo = JobRepository(any_engine)
    execution = await repo.create_job_execution(
        "checkpointJob", JobParameters(), owner="me", stale_after=timedelta(minutes=2)
    )
    step = await repo.create_step_execution(execution, "first", ExecutionContext())
    other = await repo.create_step_execution(execution, "second", ExecutionContext())
    step.read_count, step.write_count, step.commit_count = 7, 5, 2
    step.context["batch.reader.position"] = [41, "é"]
    execution.context["counts"] = {"deleted": 5}
    async with any_engine.begin() as conn:
        await repo.checkpoint(conn, step, execution)
    assert not step.context.dirty and not execution.context.dirty

    stored = await repo.last_step_execution(execution.instance.id, "first")
    assert stored is not None
    assert (stored.read_count, stored.write_count, stored.commit_count) == (7, 5, 2)
    assert stored.context.get("batch.reader.position") == [41, "é"]
    assert (await repo.require_job_execution(execution.id)).context.get("counts") == {"deleted": 5}
    untouched = await repo.last_step_execution(execution.instance.id, "second")
    assert untouched is not None and untouched.read_count == 0
    assert (await repo.step_context(other.id)).get("batch.reader.position") is None

    # Only the step's counters changed: its row is written, the contexts are left as they are.
    step.read_count = 9
    async with any_engine.begin() as conn:
        await repo.checkpoint(conn, step, execution)
    again = await repo.last_step_execution(execution.instance.id, "first")
    assert again is not None and again.read_count == 9
    assert again.context.get("batch.reader.position") == [41, "é"]
