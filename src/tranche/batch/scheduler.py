"""Fires jobs on Quartz cron schedules, once per occurrence across replicas.

:meth:`JobScheduler.tick` is the whole decision, given the current time: for each schedule,
the occurrences since the previous tick are due; the latest fires if it is no older than
the misfire grace, older ones are reported as misfires (Quartz's "fire once now"). Firing
claims the fire lock of (job, fire time) in the same transaction that creates the execution,
so of several replicas ticking at once exactly one launches it; the others see
``fired-elsewhere``. The run loop only calls ``tick`` and sleeps until the next fire time,
so tests drive ``tick`` with an injected clock instead of waiting.

**Misfires across restarts** (:meth:`JobScheduler.catch_up`, first thing the run loop
does): the occurrences a job missed while no replica ran — since the latest fire time any
replica recorded — are never skipped silently. The latest of them fires once if it is
within ``startup_misfire_grace_seconds`` (default: the job's period, so a daily job run
at 02:00 catches up on a restart at 09:00, a weekly one up to a week late); it and the
older ones are otherwise logged as ``batch.schedule.misfire`` with their count. A job
never fired before (a fresh install) has nothing to catch up.

Each scheduled execution gets the identifying parameter ``fire.time`` (the occurrence, UTC),
so every occurrence is its own job instance and a failed one can be restarted on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from tranche.batch.cron import CronExpression
from tranche.batch.errors import (
    CronSyntaxError,
    JobExecutionAlreadyRunningError,
    JobInstanceAlreadyCompleteError,
    NoSuchJobError,
    ScheduleError,
)
from tranche.batch.launcher import JobLauncher
from tranche.batch.model import Clock, JobParameter, ParameterValue, utc_now
from tranche.batch.settings import BatchSettings
from tranche.batch.starting import OccurrenceAlreadyFiredError
from tranche.core.logging import get_logger
from tranche.core.loops import BackgroundLoop

__all__ = ["FIRE_TIME", "Firing", "JobScheduler", "Schedule"]

log = get_logger(__name__)

#: Identifying parameter of a scheduled execution: the occurrence it fired for.
FIRE_TIME = "fire.time"


@dataclass(frozen=True)
class Schedule:
    """Run ``job`` whenever ``cron`` fires; ``parameters`` adds parameters per occurrence."""

    job: str
    cron: str
    parameters: Callable[[datetime], Mapping[str, ParameterValue | JobParameter]] | None = None


@dataclass(frozen=True)
class Firing:
    """What one tick did about one occurrence.

    ``outcome``: ``started``, ``fired-elsewhere`` (another replica has it),
    ``skipped-running`` (the previous run is still going), ``already-complete``,
    ``misfired`` (older than the grace) or ``failed`` (could not launch; logged).
    """

    job: str
    fire_time: datetime
    outcome: str
    execution_id: int | None = None


class JobScheduler:
    def __init__(
        self,
        launcher: JobLauncher,
        schedules: Iterable[Schedule],
        *,
        settings: BatchSettings | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.launcher = launcher
        self.settings = settings or launcher.settings
        self.clock = clock
        self.schedules = list(schedules)
        self._crons = [self._validate(s) for s in self.schedules]
        start = clock() - self.settings.misfire_grace
        self._checked = [start for _ in self.schedules]
        self._caught_up = False
        self._loop = BackgroundLoop(
            "batch:scheduler",
            self._round,
            interval_s=self.settings.scheduler_max_sleep_seconds,
            error_event="batch.schedule.tick_failed",
        )

    def _validate(self, schedule: Schedule) -> CronExpression:
        """Fail at start, naming the job and the fault: unknown job, bad or dead expression."""
        try:
            self.launcher.job(schedule.job)
            cron = CronExpression.parse(schedule.cron, self.settings.zone)
        except (NoSuchJobError, CronSyntaxError) as exc:
            raise ScheduleError(f"schedule of '{schedule.job}': {exc}") from exc
        if cron.next_fire_time(self.clock()) is None:
            raise ScheduleError(
                f"schedule of '{schedule.job}': '{schedule.cron}' never fires again"
            )
        return cron

    def next_fire_times(self, now: datetime | None = None) -> dict[str, datetime | None]:
        """Next fire time of each scheduled job (the earliest, if it has several schedules)."""
        moment = now or self.clock()
        out: dict[str, datetime | None] = {}
        for schedule, cron in zip(self.schedules, self._crons, strict=True):
            fire = cron.next_fire_time(moment)
            known = out.get(schedule.job)
            out[schedule.job] = fire if known is None or (fire and fire < known) else known
        return out

    def cron_of(self, job: str) -> str | None:
        return next((s.cron for s in self.schedules if s.job == job), None)

    def _period(self, cron: CronExpression, fire: datetime) -> timedelta:
        following = cron.next_fire_time(fire)
        return (following - fire) if following is not None else timedelta(0)

    async def catch_up(self, now: datetime | None = None) -> list[Firing]:
        """Fire (once) or report the occurrences missed while no replica was running."""
        moment = now or self.clock()
        configured = self.settings.startup_misfire_grace_seconds
        firings: list[Firing] = []
        for i, (schedule, cron) in enumerate(zip(self.schedules, self._crons, strict=True)):
            try:
                last = await self.launcher.repository.last_fire_time(schedule.job)
            except Exception:
                log.warning("batch.schedule.catch_up_failed", job=schedule.job, exc_info=True)
                continue
            horizon = self._checked[i]  # what the first tick will look at anyway
            if last is None or last >= horizon:
                continue
            missed: list[datetime] = []
            fire = cron.next_fire_time(last)
            while fire is not None and fire <= horizon and len(missed) < 10_000:
                missed.append(fire)
                fire = cron.next_fire_time(fire)
            if not missed:
                continue
            latest = missed[-1]
            grace = (
                timedelta(seconds=configured)
                if configured is not None
                else self._period(cron, latest)
            )
            older = missed[:-1]
            if moment - latest <= grace:
                firings.append(await self._fire(schedule, latest))
            else:
                older = missed
            if older:
                log.warning(
                    "batch.schedule.misfire",
                    job=schedule.job,
                    missed=len(older),
                    first=older[0].isoformat(),
                    last=older[-1].isoformat(),
                    reason="no replica was running; only the latest within the grace window runs",
                )
                firings.extend(Firing(schedule.job, f, "misfired") for f in older[-3:])
        return firings

    async def tick(self, now: datetime | None = None) -> list[Firing]:
        """Fire what is due at ``now`` (default: the clock); the run loop's only action."""
        moment = now or self.clock()
        try:
            # A crashed execution is found by the next tick of any replica.
            await self.launcher.recover()
        except Exception:
            log.warning("batch.recovery.failed", exc_info=True)
        grace = self.settings.misfire_grace
        firings: list[Firing] = []
        for i, (schedule, cron) in enumerate(zip(self.schedules, self._crons, strict=True)):
            since = self._checked[i]
            if moment <= since:
                continue
            self._checked[i] = moment
            horizon = moment - grace
            fire = cron.next_fire_time(since)
            if fire is not None and fire < horizon:
                # Missed while nothing ticked (outage, suspended process): report the first,
                # skip the rest without walking them one by one.
                firings.append(self._misfire(schedule, fire, moment))
                fire = cron.next_fire_time(max(fire, horizon - timedelta(microseconds=1)))
            latest = None
            while fire is not None and fire <= moment:
                latest = fire  # several within the grace coalesce into one run
                fire = cron.next_fire_time(fire)
            if latest is not None:
                firings.append(await self._fire(schedule, latest))
        return firings

    def _misfire(self, schedule: Schedule, fire: datetime, now: datetime) -> Firing:
        log.warning(
            "batch.schedule.misfire",
            job=schedule.job,
            fire_time=fire.isoformat(),
            late_seconds=(now - fire).total_seconds(),
        )
        return Firing(schedule.job, fire, "misfired")

    async def _fire(self, schedule: Schedule, fire: datetime) -> Firing:
        params: dict[str, ParameterValue | JobParameter] = dict(
            schedule.parameters(fire) if schedule.parameters else {}
        )
        params[FIRE_TIME] = fire
        try:
            execution_id = await self.launcher.start(schedule.job, params, occurrence=fire)
        except OccurrenceAlreadyFiredError:
            return Firing(schedule.job, fire, "fired-elsewhere")
        except JobExecutionAlreadyRunningError as exc:
            log.warning("batch.schedule.still_running", job=schedule.job, running=exc.execution_id)
            return Firing(schedule.job, fire, "skipped-running")
        except JobInstanceAlreadyCompleteError:
            return Firing(schedule.job, fire, "already-complete")
        except Exception as exc:
            # Bad parameters from the schedule, or batchdb unreachable: log it and keep the
            # scheduler alive for the next occurrence.
            log.error("batch.schedule.launch_failed", job=schedule.job, exc_info=exc)
            return Firing(schedule.job, fire, "failed")
        log.info("batch.schedule.fired", job=schedule.job, fire_time=fire.isoformat())
        return Firing(schedule.job, fire, "started", execution_id)

    async def _round(self) -> float:
        """One pass of the run loop: catch up once, fire what is due, and say how long to
        sleep — until the next fire time, at most ``scheduler_max_sleep_seconds``."""
        if not self._caught_up:
            self._caught_up = True
            try:
                await self.catch_up()
            except Exception:
                log.error("batch.schedule.catch_up_failed", exc_info=True)
        await self.tick()
        upcoming = [t for t in self.next_fire_times().values() if t is not None]
        delay = self.settings.scheduler_max_sleep_seconds
        if upcoming:
            delay = min(delay, max(0.0, (min(upcoming) - self.clock()).total_seconds()))
        return delay + 0.001

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        """Run the loop in the background; a failing tick (batchdb down) is logged and
        retried after ``scheduler_max_sleep_seconds``, never the end of scheduling."""
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
