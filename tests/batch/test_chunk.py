"""Chunk semantics: filtering, retry, skip (read, process, write scan), limits, rollback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import (
    SETTINGS,
    BadItem,
    Boom,
    Injector,
    Transient,
    table_writer,
    written,
    written_values,
)
from tranche.batch import (
    BatchListener,
    BatchStatus,
    ChunkStep,
    Job,
    JobLauncher,
    JobRepository,
    ListReader,
    RetryPolicy,
    SkipLimitExceededError,
    SkipPolicy,
    StepContext,
    StepExecution,
)
from tranche.batch.tables import step_execution
from tranche.batch.uow import UnitOfWork

NO_WAIT = {"initial_backoff": 0.0, "max_backoff": 0.0}


async def test_processor_none_filters_the_item(launcher: JobLauncher, engine: AsyncEngine) -> None:
    async def evens(item: int) -> int | None:
        return item if item % 2 == 0 else None

    job = Job(
        "filterJob",
        [ChunkStep("s", reader=ListReader(list(range(10))), processor=evens,
                   writer=table_writer("filterJob"), chunk_size=4)],
    )  # fmt: skip
    execution = await launcher.run(job)
    step = execution.step_executions[0]
    assert (step.read_count, step.filter_count, step.write_count) == (10, 5, 5)
    assert await written_values(engine, "filterJob") == [0, 2, 4, 6, 8]


async def test_transient_write_failures_are_retried_without_duplicates(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    failures = {"left": 2}
    base = table_writer("retryJob")

    async def flaky(items: Sequence[int], ctx: StepContext) -> None:
        await base(items, ctx)  # written, then rolled back by the failure below
        ctx.job_context["attempted"] = ctx.job_context.get("attempted", 0) + len(items)
        if failures["left"]:
            failures["left"] -= 1
            raise Transient("deadlock, try again")

    job = Job(
        "retryJob",
        [ChunkStep("s", reader=ListReader(list(range(6))), writer=flaky, chunk_size=3,
                   retry=RetryPolicy((Transient,), attempts=3, **NO_WAIT))],
    )  # fmt: skip
    execution = await launcher.run(job)
    assert execution.status is BatchStatus.COMPLETED
    step = execution.step_executions[0]
    assert (step.commit_count, step.rollback_count, step.write_count) == (2, 2, 6)
    assert await written_values(engine, "retryJob") == list(range(6))
    # The job context change of a rolled-back attempt is undone with it.
    assert execution.context["attempted"] == 6


async def test_a_commit_that_landed_but_answered_an_error_is_not_written_again(
    any_engine: AsyncEngine, monkeypatch: Any
) -> None:
    """The COMMIT reached the database, then the connection died before its answer: the
    chunk committed, so the retry must not write it again nor undo its counts in memory
    (the step's end would then overwrite the stored contexts with the older ones)."""
    real_commit = UnitOfWork.commit
    commits = {"n": 0}

    async def commit_then_lose_the_answer(self: UnitOfWork) -> None:
        await real_commit(self)
        commits["n"] += 1
        if commits["n"] == 2:
            raise Transient("lost connection during COMMIT")

    monkeypatch.setattr(UnitOfWork, "commit", commit_then_lose_the_answer)
    base = table_writer("landedJob")

    async def counting(items: Sequence[int], ctx: StepContext) -> None:
        await base(items, ctx)
        ctx.job_context["counted"] = ctx.job_context.get("counted", 0) + len(items)

    job = Job(
        "landedJob",
        [ChunkStep("s", reader=ListReader(list(range(9))), writer=counting, chunk_size=3,
                   retry=RetryPolicy((Transient,), attempts=3, **NO_WAIT))],
    )  # fmt: skip
    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    try:
        execution = await launcher.run(job)
    finally:
        await launcher.close()
    assert execution.status is BatchStatus.COMPLETED
    step = execution.step_executions[0]
    assert (step.commit_count, step.rollback_count, step.write_count) == (3, 0, 9)
    assert await written_values(any_engine, "landedJob") == list(range(9))
    assert execution.context["counted"] == 9
    stored = await JobRepository(any_engine).get_job_execution(execution.id)
    assert stored is not None and stored.context["counted"] == 9


async def test_a_step_start_whose_commit_answer_was_lost_is_not_inserted_twice(
    any_engine: AsyncEngine, monkeypatch: Any
) -> None:
    """The engine retries its bookkeeping through a lost connection; the retried insert of a
    step's row finds the row that landed instead of adding a second STARTED one."""
    real_create = JobRepository.create_step_execution
    calls = {"n": 0}

    async def create_then_lose_the_answer(self: JobRepository, *args: Any) -> StepExecution:
        step = await real_create(self, *args)
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError(
                "COMMIT", {}, Exception("lost connection"), connection_invalidated=True
            )
        return step

    monkeypatch.setattr(JobRepository, "create_step_execution", create_then_lose_the_answer)
    job = Job("startJob", [ChunkStep("s", reader=ListReader([1, 2]),
                                     writer=table_writer("startJob"), chunk_size=2)])  # fmt: skip
    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    try:
        execution = await launcher.run(job)
    finally:
        await launcher.close()
    assert execution.status is BatchStatus.COMPLETED
    async with any_engine.connect() as conn:
        rows = (await conn.execute(select(step_execution.c.status).where(
            step_execution.c.job_execution_id == execution.id))).all()  # fmt: skip
    assert [r.status for r in rows] == ["COMPLETED"]


async def test_retry_exhausted_fails_the_step(launcher: JobLauncher) -> None:
    async def always(item: int) -> int:
        raise Transient("still down")

    job = Job(
        "exhaustedJob",
        [ChunkStep("s", reader=ListReader([1]), processor=always, writer=table_writer("x"),
                   retry=RetryPolicy((Transient,), attempts=3, **NO_WAIT))],
    )  # fmt: skip
    execution = await launcher.run(job)
    assert execution.status is BatchStatus.FAILED
    assert "Transient: still down" in execution.exit_status.exit_description


class Recorder(BatchListener):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def on_skip_in_read(self, step: StepExecution, error: BaseException) -> None:
        self.events.append(("read", str(error)))

    async def on_skip_in_process(
        self, step: StepExecution, item: Any, error: BaseException
    ) -> None:
        self.events.append(("process", item))

    async def on_skip_in_write(self, step: StepExecution, item: Any, error: BaseException) -> None:
        self.events.append(("write", item))


class FlakyReader(ListReader[int]):
    """Raises once when about to return a chosen item (a malformed row)."""

    def __init__(self, items: list[int], bad: set[int]) -> None:
        super().__init__(items)
        self.bad = set(bad)

    async def read(self) -> int | None:
        item = await super().read()
        if item in self.bad:
            self.bad.discard(item)
            raise BadItem(f"unreadable {item}")
        return item


async def test_skips_in_read_process_and_write(any_engine: AsyncEngine) -> None:
    """The write scan uses savepoints: checked on SQLite, PostgreSQL and MariaDB."""
    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    recorder = Recorder()
    job = Job(
        "skipJob",
        [
            ChunkStep(
                "s",
                reader=FlakyReader(list(range(12)), bad={1}),
                processor=Injector(fail_at={4}, error=BadItem).process,
                writer=table_writer("skipJob", fail_on=lambda v: v in (7, 8)),
                chunk_size=5,
                skip=SkipPolicy((BadItem,), limit=4),
                listeners=[recorder],
            )
        ],
    )
    execution = await launcher.run(job)
    assert execution.status is BatchStatus.COMPLETED
    step = execution.step_executions[0]
    assert (step.read_skip_count, step.process_skip_count, step.write_skip_count) == (1, 1, 2)
    assert await written_values(any_engine, "skipJob") == [0, 2, 3, 5, 6, 9, 10, 11]
    assert step.write_count == 8 and step.rollback_count == 1
    assert sorted(recorder.events, key=str) == sorted(
        [("read", "unreadable 1"), ("process", 4), ("write", 7), ("write", 8)], key=str
    )


async def test_skip_limit_exceeded_fails_and_rolls_back_the_chunk(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    job = Job(
        "limitJob",
        [ChunkStep("s", reader=ListReader(list(range(10))),
                   writer=table_writer("limitJob", fail_on=lambda v: v >= 6),
                   chunk_size=3, skip=SkipPolicy((BadItem,), limit=2))],
    )  # fmt: skip
    execution = await launcher.run(job)
    assert execution.status is BatchStatus.FAILED
    assert isinstance(execution.all_failure_exceptions()[0], SkipLimitExceededError)
    assert "exceeded its skip limit of 2" in execution.exit_status.exit_description
    # Chunks [0-2] and [3-5] committed; [6-8] scanned, 2 skips, the 3rd fails: all rolled back.
    assert await written_values(engine, "limitJob") == [0, 1, 2, 3, 4, 5]


async def test_non_skippable_error_rolls_back_the_whole_chunk(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    async def writer(items: Sequence[int], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": "rbJob", "value": v} for v in items])
        if 4 in items:
            raise Boom("disk full")

    job = Job("rbJob", [ChunkStep("s", reader=ListReader(list(range(8))), writer=writer,
                                  chunk_size=3, skip=SkipPolicy((BadItem,)))])  # fmt: skip
    execution = await launcher.run(job)
    assert execution.status is BatchStatus.FAILED
    assert await written_values(engine, "rbJob") == [0, 1, 2]
    step = execution.step_executions[0]
    assert (step.commit_count, step.rollback_count, step.write_count) == (1, 1, 3)


async def test_writer_to_another_database_commits_with_the_chunk(
    launcher: JobLauncher, engine: AsyncEngine, tmp_path: Any
) -> None:
    from tests.batch.factories import batch_engine_for

    other = await batch_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    try:

        async def writer(items: Sequence[int], ctx: StepContext) -> None:
            session = await ctx.session(other)
            await session.execute(insert(written), [{"job": "xJob", "value": v} for v in items])
            if 7 in items:
                raise Boom("fails after writing")

        job = Job("xJob", [ChunkStep("s", reader=ListReader(list(range(9))), writer=writer,
                                     chunk_size=3)])  # fmt: skip
        execution = await launcher.run(job)
        assert execution.status is BatchStatus.FAILED
        assert await written_values(other, "xJob") == [0, 1, 2, 3, 4, 5]
        assert await written_values(engine, "xJob") == []
    finally:
        await other.dispose()


async def test_a_writer_committing_its_batchdb_session_still_commits_with_the_chunk(
    any_engine: AsyncEngine,
) -> None:
    """The writer's batchdb session is inside the chunk's transaction: its commit() only
    flushes, so a failure later in the chunk rolls its rows back with the checkpoint."""

    async def writer(items: Sequence[int], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": "earlyJob", "value": v} for v in items])
        await session.commit()
        if 4 in items:
            raise Boom("fails after its commit")

    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    try:
        job = Job("earlyJob", [ChunkStep("s", reader=ListReader(list(range(6))), writer=writer,
                                         chunk_size=3)])  # fmt: skip
        execution = await launcher.run(job)
    finally:
        await launcher.close()
    assert execution.status is BatchStatus.FAILED
    assert await written_values(any_engine, "earlyJob") == [0, 1, 2]
    step = execution.step_executions[0]
    assert (step.commit_count, step.write_count, step.rollback_count) == (1, 3, 1)


async def test_a_core_writer_on_ctx_connection_commits_with_the_chunk(
    any_engine: AsyncEngine,
) -> None:
    """ctx.connection(): the chunk's batchdb transaction, without an ORM session."""

    async def writer(items: Sequence[int], ctx: StepContext) -> None:
        conn = await ctx.connection()
        await conn.execute(insert(written), [{"job": "coreJob", "value": v} for v in items])
        if 4 in items:
            raise Boom("fails after writing")

    launcher = JobLauncher(JobRepository(any_engine), settings=SETTINGS)
    try:
        job = Job("coreJob", [ChunkStep("s", reader=ListReader(list(range(6))), writer=writer,
                                        chunk_size=3)])  # fmt: skip
        execution = await launcher.run(job)
    finally:
        await launcher.close()
    assert execution.status is BatchStatus.FAILED
    assert await written_values(any_engine, "coreJob") == [0, 1, 2]
