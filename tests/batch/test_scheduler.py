"""Cron scheduling driven by an injected clock (no waiting), plus one real-time loop check."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS
from tests.batch.test_cron import SEED
from tests.fixtures.waiting import eventually
from tranche.batch import (
    FIRE_TIME,
    BatchSettings,
    BatchStatus,
    Job,
    JobLauncher,
    JobRepository,
    JobScheduler,
    Schedule,
    ScheduleError,
    StepContext,
    TaskletStep,
)

T0 = datetime(2025, 1, 6, 1, 59, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def quick_job(name: str, gate: asyncio.Event | None = None) -> Job:
    async def work(ctx: StepContext) -> None:
        if gate is not None:
            await gate.wait()

    return Job(name, [TaskletStep(f"{name}Step", work)])


def make(engine: AsyncEngine, clock: Clock, *jobs: Job, **settings: object) -> JobLauncher:
    merged = SETTINGS.model_copy(update=settings)
    return JobLauncher(JobRepository(engine, clock=clock), jobs, settings=merged)


async def test_the_seed_schedules_are_accepted_verbatim(engine: AsyncEngine) -> None:
    clock = Clock(datetime(2025, 1, 6, 0, 30, tzinfo=UTC))
    launcher = make(engine, clock, *(quick_job(name) for name in SEED), timezone="Europe/Paris")
    scheduler = JobScheduler(
        launcher, [Schedule(job, cron) for job, cron in SEED.items()], clock=clock
    )
    nexts = scheduler.next_fire_times()
    assert nexts["tokenCleanupJob"] == datetime(2025, 1, 6, 1, 0, tzinfo=UTC)  # 02:00 Paris
    assert nexts["dureeDoctoratAlertJob"] == datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    assert nexts["archiveJob"] == datetime(2025, 4, 1, 1, 0, tzinfo=UTC)
    assert scheduler.cron_of("archiveJob") == "0 0 3 1 1,4,7,10 ?"


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule("noSuchJob", "0 0 2 * * ?"), "schedule of 'noSuchJob': no job named"),
        (Schedule("cronJob", "0 0 2 * * MON"), "schedule of 'cronJob': invalid cron"),
        (Schedule("cronJob", "0 0 2 * *"), "expected 6 or 7 fields"),
        (Schedule("cronJob", "0 0 2 1 1 ? 2020"), "never fires again"),
    ],
)
def test_bad_schedules_fail_at_start_with_the_job_named(
    engine: AsyncEngine, schedule: Schedule, message: str
) -> None:
    launcher = make(engine, Clock(T0), quick_job("cronJob"))
    with pytest.raises(ScheduleError, match=message):
        JobScheduler(launcher, [schedule], clock=Clock(T0))


async def test_fires_each_occurrence_once_with_its_fire_time(engine: AsyncEngine) -> None:
    clock = Clock(T0)
    launcher = make(engine, clock, quick_job("nightlyJob"))
    scheduler = JobScheduler(
        launcher,
        [Schedule("nightlyJob", "0 0 2 * * ?", parameters=lambda t: {"day": t.date()})],
        clock=clock,
    )
    assert await scheduler.tick(T0 + timedelta(seconds=30)) == []
    fire = datetime(2025, 1, 6, 2, tzinfo=UTC)
    clock.now = fire + timedelta(seconds=2)
    (firing,) = await scheduler.tick()
    assert (firing.outcome, firing.fire_time) == ("started", fire)
    execution = await launcher.wait(firing.execution_id or 0)
    assert execution.status is BatchStatus.COMPLETED
    assert execution.parameters.value(FIRE_TIME) == fire
    assert execution.parameters.value("day") == fire.date()
    clock.now = fire + timedelta(seconds=40)
    assert await scheduler.tick() == []
    # The next night fires again: a new instance thanks to its own fire time.
    clock.now = fire + timedelta(days=1, seconds=1)
    (second,) = await scheduler.tick()
    assert second.outcome == "started"
    await launcher.wait(second.execution_id or 0)
    assert await launcher.repository.count_job_executions("nightlyJob") == 2


async def test_misfire_grace(engine: AsyncEngine) -> None:
    clock = Clock(T0)
    launcher = make(engine, clock, quick_job("graceJob"), misfire_grace_seconds=60)
    scheduler = JobScheduler(launcher, [Schedule("graceJob", "0 0 2 * * ?")], clock=clock)
    # Too late: the scheduler was busy (or suspended) past the grace.
    (late,) = await scheduler.tick(datetime(2025, 1, 6, 2, 1, 30, tzinfo=UTC))
    assert late.outcome == "misfired"
    # A replica starting 30 s after an occurrence still fires it (within the grace).
    clock.now = datetime(2025, 1, 7, 2, 0, 30, tzinfo=UTC)
    fresh = JobScheduler(launcher, [Schedule("graceJob", "0 0 2 * * ?")], clock=clock)
    (on_time,) = await fresh.tick()
    assert on_time.outcome == "started"
    await launcher.wait(on_time.execution_id or 0)
    # After a long outage the missed occurrences are reported, not run.
    clock.now = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)
    (stale,) = await fresh.tick()
    assert (stale.outcome, stale.fire_time.day) == ("misfired", 8)
    assert await launcher.repository.count_job_executions("graceJob") == 1


async def test_occurrence_while_previous_run_still_going_is_skipped(engine: AsyncEngine) -> None:
    gate = asyncio.Event()
    clock = Clock(datetime(2025, 1, 6, 2, 0, 1, tzinfo=UTC))
    launcher = make(engine, clock, quick_job("slowJob", gate))
    scheduler = JobScheduler(launcher, [Schedule("slowJob", "0 * * * * ?")], clock=clock)
    (first,) = await scheduler.tick()
    assert first.outcome == "started"
    clock.now += timedelta(minutes=1)
    (second,) = await scheduler.tick()
    assert second.outcome == "skipped-running"
    gate.set()
    await launcher.wait(first.execution_id or 0)
    await launcher.close()


async def test_time_zone_of_the_schedules(engine: AsyncEngine) -> None:
    clock = Clock(datetime(2025, 7, 1, 0, 0, 1, tzinfo=UTC))  # 02:00:01 in Paris (CEST)
    launcher = make(engine, clock, quick_job("parisJob"), timezone="Europe/Paris")
    scheduler = JobScheduler(launcher, [Schedule("parisJob", "0 0 2 * * ?")], clock=clock)
    (firing,) = await scheduler.tick()
    assert firing.fire_time == datetime(2025, 7, 1, 0, 0, tzinfo=UTC)
    assert firing.outcome == "started"
    await launcher.wait(firing.execution_id or 0)


async def test_run_loop_fires_on_the_real_clock(engine: AsyncEngine) -> None:
    launcher = JobLauncher(JobRepository(engine), [quick_job("everySecondJob")], settings=SETTINGS)
    scheduler = JobScheduler(launcher, [Schedule("everySecondJob", "* * * * * ?")])
    scheduler.start()

    async def fired_twice() -> bool:
        return await launcher.repository.count_job_executions("everySecondJob") >= 2

    try:
        with contextlib.suppress(AssertionError):  # the assertion below says what failed
            await eventually(fired_twice, 30, "two firings")
    finally:
        await scheduler.stop()
        await launcher.close()
    assert await launcher.repository.count_job_executions("everySecondJob") >= 2


def test_settings_validate_the_time_zone_and_lock_timing() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        BatchSettings(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="3 x lock_heartbeat_seconds"):
        BatchSettings(lock_heartbeat_seconds=30, lock_stale_after_seconds=60)


async def test_a_restart_spanning_an_occurrence_runs_it_once_within_the_period(
    any_engine: AsyncEngine,
) -> None:
    engine = any_engine
    clock = Clock(datetime(2025, 1, 6, 2, 0, 5, tzinfo=UTC))
    launcher = make(engine, clock, quick_job("dailyJob"))
    schedule = Schedule("dailyJob", "0 0 2 * * ?")
    first = JobScheduler(launcher, [schedule], clock=clock)
    (fired,) = await first.tick()
    await launcher.wait(fired.execution_id or 0)

    # Every replica down from Monday night until Tuesday 09:00: Tuesday's 02:00 is missed.
    clock.now = datetime(2025, 1, 7, 9, 0, tzinfo=UTC)
    restarted = JobScheduler(launcher, [schedule], clock=clock)
    (caught,) = await restarted.catch_up()
    assert (caught.outcome, caught.fire_time) == ("started", datetime(2025, 1, 7, 2, tzinfo=UTC))
    await launcher.wait(caught.execution_id or 0)
    # Once: another replica starting at the same time finds it fired.
    twin = JobScheduler(launcher, [schedule], clock=clock)
    assert await twin.catch_up() == []
    assert await launcher.repository.count_job_executions("dailyJob") == 2

    # Down for four days: the latest missed night runs, the three before are misfires.
    clock.now = datetime(2025, 1, 11, 3, 0, tzinfo=UTC)
    later = JobScheduler(launcher, [schedule], clock=clock)
    firings = await later.catch_up()
    assert [f.outcome for f in firings] == ["started", "misfired", "misfired", "misfired"]
    assert firings[0].fire_time == datetime(2025, 1, 11, 2, tzinfo=UTC)
    await launcher.wait(firings[0].execution_id or 0)


async def test_a_missed_occurrence_older_than_the_grace_is_a_logged_misfire(
    any_engine: AsyncEngine,
) -> None:
    engine = any_engine
    clock = Clock(datetime(2025, 1, 6, 2, 0, 5, tzinfo=UTC))
    launcher = make(engine, clock, quick_job("graceWindowJob"), startup_misfire_grace_seconds=3600)
    schedule = Schedule("graceWindowJob", "0 0 2 * * ?")
    (fired,) = await JobScheduler(launcher, [schedule], clock=clock).tick()
    await launcher.wait(fired.execution_id or 0)
    clock.now = datetime(2025, 1, 7, 9, 0, tzinfo=UTC)  # 7 h after Tuesday's run: > 1 h grace
    firings = await JobScheduler(launcher, [schedule], clock=clock).catch_up()
    assert [(f.outcome, f.fire_time) for f in firings] == [
        ("misfired", datetime(2025, 1, 7, 2, tzinfo=UTC))
    ]
    assert await launcher.repository.count_job_executions("graceWindowJob") == 1
    # A job never fired (a fresh install) has nothing to catch up.
    fresh = make(engine, clock, quick_job("neverJob"))
    assert (
        await JobScheduler(fresh, [Schedule("neverJob", "0 0 2 * * ?")], clock=clock).catch_up()
        == []
    )


async def test_a_failing_tick_does_not_end_the_run_loop(engine: AsyncEngine) -> None:
    """batchdb unreachable for one tick: the loop logs it and ticks again, it never stops
    scheduling (before, the exception ended the scheduler's task for good)."""
    launcher = JobLauncher(JobRepository(engine), [quick_job("everySecondJob")], settings=SETTINGS)
    settings = SETTINGS.model_copy(update={"scheduler_max_sleep_seconds": 0.05})
    scheduler = JobScheduler(
        launcher, [Schedule("everySecondJob", "* * * * * ?")], settings=settings
    )
    real_tick = scheduler.tick
    calls: list[str] = []

    async def flaky_tick(now: datetime | None = None) -> list[object]:
        calls.append("tick")
        if len(calls) == 1:
            raise ConnectionError("batchdb unreachable")
        return list(await real_tick(now))

    scheduler.tick = flaky_tick  # type: ignore[method-assign]
    scheduler.start()
    try:
        await eventually(lambda: len(calls) >= 3, 30, "ticks after the failing one")
        assert scheduler.running
    finally:
        await scheduler.stop()
        await launcher.close()
    assert not scheduler.running
