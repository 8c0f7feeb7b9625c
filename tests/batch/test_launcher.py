from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import (
    SETTINGS,
    Boom,
    Injector,
    counting_job,
    written_count,
    written_values,
)
from tranche.batch import (
    BatchStatus,
    ChunkStep,
    Job,
    JobExecutionAlreadyRunningError,
    JobExecutionNotRunningError,
    JobInstanceAlreadyCompleteError,
    JobLauncher,
    JobParameter,
    JobParameters,
    JobParametersInvalidError,
    JobRepository,
    JobRestartError,
    ListReader,
    NoSuchJobError,
    RepeatStatus,
    StepContext,
    TaskletStep,
)
from tranche.batch.control import ExecutionControl
from tranche.batch.runner import JobRunner
from tranche.batch.tables import job_lock


async def test_run_completes_and_is_persisted(launcher: JobLauncher, engine: AsyncEngine) -> None:
    job = counting_job("plainJob", 23, 5)
    execution = await launcher.run(job, {"day": datetime(2024, 5, 1, tzinfo=UTC), "n": 3})

    assert execution.status is BatchStatus.COMPLETED
    assert execution.exit_status.exit_code == "COMPLETED"
    assert await written_values(engine, "plainJob") == list(range(23))
    stored = await launcher.repository.require_job_execution(execution.id)
    assert stored.status is BatchStatus.COMPLETED
    assert stored.parameters.as_dict() == {"day": datetime(2024, 5, 1, tzinfo=UTC), "n": 3}
    assert stored.start_time is not None and stored.end_time is not None
    (step,) = stored.step_executions
    assert (step.read_count, step.write_count, step.commit_count) == (23, 23, 5)
    assert step.status is BatchStatus.COMPLETED
    assert step.context["batch.reader.position"] == 23


async def test_completed_instance_is_refused_and_run_id_makes_a_new_one(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    job = counting_job("onceJob", 3, 2)
    await launcher.run(job, {"run.id": 1})
    with pytest.raises(JobInstanceAlreadyCompleteError, match=r"run\.id=1"):
        await launcher.run(job, {"run.id": 1})
    # Non-identifying parameters do not make a new instance either.
    with pytest.raises(JobInstanceAlreadyCompleteError):
        await launcher.run(job, {"run.id": 1, "who": JobParameter("admin", identifying=False)})
    second = await launcher.run(job, {"run.id": 2})
    assert second.status is BatchStatus.COMPLETED
    third = await launcher.wait(await launcher.start(job, next_instance=True))
    assert third.parameters.value("run.id") == 3
    assert third.instance.id not in {second.instance.id}
    assert await written_count(engine, "onceJob") == 9


async def test_failure_is_recorded_and_restart_resumes_after_last_commit(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    injector = Injector(fail_at={12})
    job = counting_job("failingJob", 20, 5, injector)
    failed = await launcher.run(job)

    assert failed.status is BatchStatus.FAILED
    assert "Boom: injected at 12" in failed.exit_status.exit_description
    assert "countStep" in failed.exit_status.exit_description
    assert isinstance(failed.all_failure_exceptions()[0], Boom)
    assert await written_values(engine, "failingJob") == list(range(10))
    (step,) = failed.step_executions
    assert step.status is BatchStatus.FAILED and step.rollback_count == 0

    restarted = await launcher.wait(await launcher.restart(failed.id))
    assert restarted.status is BatchStatus.COMPLETED
    assert restarted.instance == failed.instance
    assert await written_values(engine, "failingJob") == list(range(20))
    assert restarted.step_executions[0].read_count == 10
    with pytest.raises(JobRestartError, match="COMPLETED"):
        await launcher.restart(restarted.id)


async def test_restart_skips_completed_steps_and_keeps_the_job_context(
    launcher: JobLauncher,
) -> None:
    calls: list[str] = []
    fail = {"second": True}

    async def first(ctx: StepContext) -> None:
        calls.append("first")
        ctx.job_context["found"] = 7

    async def second(ctx: StepContext) -> None:
        calls.append("second")
        assert ctx.job_context["found"] == 7
        if fail["second"]:
            raise Boom("second fails once")

    job = Job("twoStepJob", [TaskletStep("firstStep", first), TaskletStep("secondStep", second)])
    failed = await launcher.run(job)
    assert failed.status is BatchStatus.FAILED
    fail["second"] = False
    # Running again with the same (empty) parameters restarts the failed instance.
    again = await launcher.run(job)
    assert again.status is BatchStatus.COMPLETED
    assert again.instance == failed.instance
    assert calls == ["first", "second", "second"]
    assert [s.step_name for s in again.step_executions] == ["secondStep"]


async def test_already_running_job_is_refused_until_it_ends(launcher: JobLauncher) -> None:
    release = asyncio.Event()

    async def hold(ctx: StepContext) -> None:
        await release.wait()

    job = Job("holdingJob", [TaskletStep("holdStep", hold)])
    first = await launcher.start(job, {"run.id": 1})
    with pytest.raises(JobExecutionAlreadyRunningError, match="holdingJob") as err:
        await launcher.start(job, {"run.id": 2})
    assert err.value.execution_id == first
    other = await launcher.run(counting_job("otherJob", 2, 1))
    assert other.status is BatchStatus.COMPLETED
    release.set()
    assert (await launcher.wait(first)).status is BatchStatus.COMPLETED
    assert (await launcher.run(job, {"run.id": 2})).status is BatchStatus.COMPLETED


async def test_stop_ends_after_the_chunk_and_restart_finishes(
    launcher: JobLauncher, engine: AsyncEngine
) -> None:
    ids: list[int] = []

    async def stop_at(item: int) -> None:
        if item == 7:
            await launcher.stop(ids[0])

    job = counting_job("stoppableJob", 20, 3, Injector(on_item=stop_at))
    ids.append(await launcher.start(job))
    stopped = await launcher.wait(ids[0])
    assert stopped.status is BatchStatus.STOPPED
    assert stopped.exit_status.exit_code == "STOPPED"
    assert await written_values(engine, "stoppableJob") == list(range(9))
    with pytest.raises(JobExecutionNotRunningError):
        await launcher.stop(ids[0])
    done = await launcher.wait(await launcher.restart(stopped.id))
    assert done.status is BatchStatus.COMPLETED
    assert await written_values(engine, "stoppableJob") == list(range(20))


async def test_abandon(launcher: JobLauncher) -> None:
    failed = await launcher.run(counting_job("abandonedJob", 5, 2, Injector(fail_at={3})))
    abandoned = await launcher.abandon(failed.id)
    assert abandoned.status is BatchStatus.ABANDONED
    with pytest.raises(JobRestartError):
        await launcher.restart(failed.id)
    with pytest.raises(JobInstanceAlreadyCompleteError, match="ABANDONED"):
        await launcher.run("abandonedJob")
    done = await launcher.run(counting_job("doneJob", 1, 1))
    with pytest.raises(JobRestartError, match="COMPLETED"):
        await launcher.abandon(done.id)


async def test_dead_process_lock_is_taken_over_and_the_zombie_cannot_commit(
    engine: AsyncEngine,
) -> None:
    """A process that stops renewing its lock is judged dead; its late chunk is refused."""
    in_chunk = asyncio.Event()
    resume = asyncio.Event()

    async def slow(item: int) -> int:
        if item == 4:
            in_chunk.set()
            await resume.wait()
        return item

    zombie = JobLauncher(JobRepository(engine), settings=SETTINGS, owner="zombie")
    job = counting_job("crashJob", 8, 2, Injector(on_item=slow))
    zombie_id = await zombie.start(job)
    await in_chunk.wait()

    later = datetime.now(UTC) + timedelta(minutes=5)
    rescuer = JobLauncher(JobRepository(engine, clock=lambda: later), [job], settings=SETTINGS)
    dead = await rescuer.repository.require_job_execution(zombie_id)
    assert dead.status is BatchStatus.STARTED
    # The zombie is "dead", so stopping its execution ends it at once.
    assert await rescuer.stop(zombie_id) is BatchStatus.STOPPED
    restarted = await rescuer.restart(zombie_id)
    resume.set()
    zombie_end = await zombie.wait(zombie_id)
    assert zombie_end.status is BatchStatus.FAILED
    assert "lost its job lock" in zombie_end.exit_status.exit_description
    assert (await rescuer.wait(restarted)).status is BatchStatus.COMPLETED
    assert await written_values(engine, "crashJob") == list(range(8))
    await zombie.close()
    await rescuer.close()


async def test_stale_lock_of_a_crashed_process_fails_its_execution(engine: AsyncEngine) -> None:
    repo = JobRepository(engine)
    job = counting_job("crashedJob", 4, 2)
    crashed = await repo.create_job_execution(
        job.name, JobParameters(), owner="gone", stale_after=timedelta(minutes=2)
    )
    live = JobLauncher(repo, settings=SETTINGS)
    with pytest.raises(JobExecutionAlreadyRunningError):
        await live.run(job)
    later = datetime.now(UTC) + timedelta(minutes=3)
    future = JobLauncher(JobRepository(engine, clock=lambda: later), [job], settings=SETTINGS)
    execution = await future.run("crashedJob")
    assert execution.status is BatchStatus.COMPLETED
    assert execution.instance == crashed.instance
    old = await repo.require_job_execution(crashed.id)
    assert old.status is BatchStatus.FAILED
    assert "gone stopped renewing" in old.exit_status.exit_description


async def test_conditional_step_and_continuable_tasklet(launcher: JobLauncher) -> None:
    slices: list[int] = []

    async def work_in_slices(ctx: StepContext) -> RepeatStatus:
        done = ctx.step_context.get("done", 0)
        slices.append(done)
        ctx.step_context["done"] = done + 1
        ctx.count(write=1)
        ctx.job_context["anomalies"] = done
        return RepeatStatus.CONTINUABLE if done < 2 else RepeatStatus.FINISHED

    reported: list[int] = []

    async def report(ctx: StepContext) -> None:
        reported.append(ctx.job_context["anomalies"])

    def steps(threshold: int) -> list[TaskletStep]:
        return [
            TaskletStep("sliceStep", work_in_slices),
            TaskletStep("reportStep", report, when=lambda c: c.get("anomalies", 0) > threshold),
        ]

    ran = await launcher.run(Job("conditionalJob", steps(0)), {"run.id": 1})
    assert slices == [0, 1, 2] and reported == [2]
    assert ran.step_executions[0].commit_count == 3 and ran.step_executions[0].write_count == 3
    skipped = await launcher.run(Job("conditionalJob2", steps(5)))
    assert skipped.status is BatchStatus.COMPLETED
    assert skipped.step_executions[1].exit_status.exit_code == "NOOP"
    assert reported == [2]


async def test_unknown_job_and_bad_parameters_change_nothing(launcher: JobLauncher) -> None:
    with pytest.raises(NoSuchJobError, match="nope"):
        await launcher.run("nope")
    job = counting_job("paramJob", 1, 1)
    with pytest.raises(JobParametersInvalidError, match=r"'when'.*timezone"):
        await launcher.run(job, {"when": datetime(2024, 1, 1)})
    with pytest.raises(JobParametersInvalidError, match="'blob'"):
        await launcher.run(job, {"blob": [1, 2]})  # type: ignore[dict-item]
    assert await launcher.repository.count_job_executions("paramJob") == 0
    with pytest.raises(ValueError, match="chunk_size"):
        ChunkStep(
            "s", reader=ListReader([1]), writer=lambda items, ctx: asyncio.sleep(0), chunk_size=0
        )
    with pytest.raises(ValueError, match="duplicate step names"):
        Job("dup", [TaskletStep("a", lambda ctx: asyncio.sleep(0))] * 2)  # type: ignore[arg-type,return-value]


async def test_shutdown_stops_after_the_chunk_or_interrupts_after_the_grace(
    engine: AsyncEngine,
) -> None:
    started = asyncio.Event()

    pace = {"seconds": 0.01}

    async def slow(item: int) -> int:
        started.set()
        await asyncio.sleep(pace["seconds"])
        return item

    job = counting_job("shutdownJob", 200, 5, Injector(on_item=slow))
    graceful = JobLauncher(JobRepository(engine), settings=SETTINGS)
    first = await graceful.start(job)
    await started.wait()
    await graceful.close()
    pace["seconds"] = 0
    stopped = await graceful.repository.require_job_execution(first)
    assert stopped.status is BatchStatus.STOPPED
    assert stopped.step_executions[0].write_count % 5 == 0

    forever = asyncio.Event()
    hanging = asyncio.Event()

    async def hang(ctx: StepContext) -> None:
        hanging.set()
        await forever.wait()

    impatient = JobLauncher(
        JobRepository(engine), settings=SETTINGS.model_copy(update={"shutdown_grace_seconds": 0.1})
    )
    second = await impatient.start(Job("hangingJob", [TaskletStep("hangStep", hang)]))
    await hanging.wait()
    await impatient.close()
    interrupted = await impatient.repository.require_job_execution(second)
    assert interrupted.status is BatchStatus.FAILED
    assert "interrupted" in interrupted.exit_status.exit_description
    assert await impatient.repository.find_running_executions() == []
    # Both can be resumed by a later process.
    resumed = JobLauncher(JobRepository(engine), [job], settings=SETTINGS)
    done = await resumed.wait(await resumed.restart(first))
    assert done.status is BatchStatus.COMPLETED
    assert await written_count(engine, "shutdownJob") == 200


async def test_stop_before_the_job_started_ends_it_without_running_steps(
    engine: AsyncEngine,
) -> None:
    repo = JobRepository(engine)
    job = counting_job("earlyStopJob", 3, 1)
    launcher = JobLauncher(repo, [job], settings=SETTINGS)
    # Created by this process (lock held, renewed) but its task has not run yet.
    execution = await repo.create_job_execution(
        job.name, JobParameters(), owner=launcher.owner, stale_after=SETTINGS.stale_after
    )
    assert await repo.request_stop(execution.id, SETTINGS.stale_after) is BatchStatus.STOPPING
    ended = await JobRunner(repo, heartbeat_interval=1).run(
        job, execution, ExecutionControl(repo, execution)
    )
    assert ended.status is BatchStatus.STOPPED and ended.step_executions == []
    assert await written_count(engine, "earlyStopJob") == 0


async def test_execution_left_running_without_a_lock_row_is_failed_and_restarted(
    engine: AsyncEngine,
) -> None:
    repo = JobRepository(engine)
    job = counting_job("orphanJob", 4, 2)
    orphan = await repo.create_job_execution(
        job.name, JobParameters(), owner="gone", stale_after=SETTINGS.stale_after
    )
    async with engine.begin() as conn:
        await conn.execute(delete(job_lock))
    execution = await JobLauncher(repo, settings=SETTINGS).run(job)
    assert execution.status is BatchStatus.COMPLETED
    assert execution.instance == orphan.instance
    old = await repo.require_job_execution(orphan.id)
    assert old.status is BatchStatus.FAILED
    assert old.exit_status.exit_code == "CRASHED"
    assert "job lock is gone" in old.exit_status.exit_description
