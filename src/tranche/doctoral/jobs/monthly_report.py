"""monthlyReportJob: the doctoral school's monthly report (seed 004 task 9), cron ``0 0 9 1 * ?``.

Steps, each a tasklet committed with its results in the job's execution
context, so a restart resumes at the step that failed:

1. five statistics steps (enrollments, defenses, notifications, users, thesis
   durations; :mod:`tranche.doctoral.reports.statistics`), each for the report's
   month *and* the month before (the PDF shows the change);
2. ``generatePdfStep`` writes ``rapport_YYYY_MM.pdf`` atomically in the reports
   directory (a re-run of the month replaces it);
3. ``publishReportEventStep`` puts one ``NOTIFICATION_GENERALE`` event per
   recipient on ``notifications`` through the outbox, in the same batchdb
   transaction as the step's checkpoint: exactly once per job instance;
4. ``sendReportMailStep`` mails the PDF to every recipient
   (:mod:`tranche.doctoral.reports.distribution`), recording each send in
   ``report_deliveries``.

The month is the job parameter ``month`` (``YYYY-MM``) when given, else the
calendar month before ``runAt`` in ``BATCH_TIMEZONE`` (a run on 1 March
reports on February).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tranche.batch.job import Job, RepeatStatus, TaskletStep
from tranche.batch.listeners import BatchListener
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.doctoral.jobs.common import JobSpec, run_at
from tranche.doctoral.reports import statistics
from tranche.doctoral.reports.period import Month
from tranche.doctoral.sources import Sources

__all__ = [
    "DESCRIPTION",
    "JOB_NAME",
    "MONTH",
    "MONTH_KEY",
    "STATS_PREFIX",
    "build",
    "report_month",
    "stats_of",
]

JOB_NAME = "monthlyReportJob"
DESCRIPTION = (
    "Monthly report of the doctoral school (enrollments, defenses, notifications, users, "
    "thesis durations) as a PDF mailed to the administrators"
)
#: Job parameter: the month to report on, ``YYYY-MM`` (default: the month before runAt).
MONTH = "month"
#: Job-context key of the month the execution reports on (``YYYY-MM``).
MONTH_KEY = "reportMonth"
#: Job-context key prefix of each category's statistics: ``stats.enrollments``…
STATS_PREFIX = "stats."

Collector = Callable[[Database, Month], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Category:
    key: str
    step: str
    database: Callable[[Sources], Database]
    collect: Collector


CATEGORY_STEPS = (
    Category(
        "enrollments",
        "collectEnrollmentStatsStep",
        lambda s: s.inscription_db,
        statistics.enrollment_stats,
    ),
    Category(
        "defenses", "collectDefenseStatsStep", lambda s: s.defensedb, statistics.defense_stats
    ),
    Category(
        "notifications",
        "collectNotificationStatsStep",
        lambda s: s.notification_db,
        statistics.notification_stats,
    ),
    Category("users", "collectUserStatsStep", lambda s: s.userdb, statistics.user_stats),
    Category(
        "durations",
        "collectDurationStatsStep",
        lambda s: s.inscription_db,
        statistics.duration_stats,
    ),
)


def report_month(ctx: StepContext, zone: Any) -> Month:
    """The month this execution reports on (fixed in the job context by the first step)."""
    known = ctx.job_context.get(MONTH_KEY)
    if isinstance(known, str):
        return Month.parse(known)
    given = ctx.parameters.value(MONTH)
    month = (
        Month.parse(str(given)) if given is not None else Month.before(run_at(ctx).astimezone(zone))
    )
    ctx.job_context[MONTH_KEY] = str(month)
    return month


def stats_of(context: Any) -> dict[str, dict[str, Any]]:
    """``{category: {"current": {...}, "previous": {...}}}`` from a job context."""
    return {c: context.get(STATS_PREFIX + c, {}) for c in statistics.CATEGORIES}


def _collect_step(category: Category, sources: Sources, zone: Any) -> TaskletStep:
    async def collect(ctx: StepContext) -> RepeatStatus:
        month = report_month(ctx, zone)
        db = category.database(sources)
        current = await category.collect(db, month)
        previous = await category.collect(db, month.previous)
        ctx.job_context[STATS_PREFIX + category.key] = {"current": current, "previous": previous}
        ctx.count(read=1, write=1)
        return RepeatStatus.FINISHED

    return TaskletStep(category.step, collect)


def build(
    sources: Sources,
    zone: Any,
    cron: str,
    extra_steps: Sequence[TaskletStep] = (),
    listeners: Sequence[BatchListener] = (),
) -> JobSpec:
    steps = [_collect_step(c, sources, zone) for c in CATEGORY_STEPS]
    job = Job(JOB_NAME, [*steps, *extra_steps], listeners=listeners, description=DESCRIPTION)
    return JobSpec(job, cron, DESCRIPTION)
