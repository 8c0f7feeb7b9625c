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

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tranche.batch.job import Job, RepeatStatus, TaskletStep
from tranche.batch.listeners import BatchListener
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.doctoral.jobs.common import JobSpec, add_counts, run_at
from tranche.doctoral.mail import Mailer, admin_emails
from tranche.doctoral.reports import statistics
from tranche.doctoral.reports.content import Thresholds
from tranche.doctoral.reports.distribution import (
    DeliveryFailed,
    deliver_all,
    mail_text,
    report_events,
)
from tranche.doctoral.reports.pdf import ReportInput, render_pdf
from tranche.doctoral.reports.period import Month
from tranche.doctoral.reports.storage import ReportStore
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import Sources

__all__ = [
    "DESCRIPTION",
    "JOB_NAME",
    "MONTH",
    "MONTH_KEY",
    "REPORT_KEY",
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
#: Job-context key of the written report: fileName, sizeBytes, generationSeconds, pages.
REPORT_KEY = "report"

log = get_logger(__name__)

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


def download_url(settings: DoctoralSettings, file_name: str) -> str:
    return f"{settings.report_base_url.rstrip('/')}/api/batch/reports/{file_name}/download"


def _thresholds(settings: DoctoralSettings) -> Thresholds:
    return Thresholds(
        settings.report_alert_failure_rate_percent,
        settings.report_alert_over_6_years,
        settings.report_alert_validation_days,
    )


def _report_of(ctx: StepContext) -> dict[str, Any]:
    report = ctx.job_context.get(REPORT_KEY)
    if not isinstance(report, dict):
        raise RuntimeError("no report in the job context: generatePdfStep has not completed")
    return report


def _pdf_step(settings: DoctoralSettings, store: ReportStore, zone: Any) -> TaskletStep:
    async def generate(ctx: StepContext) -> RepeatStatus:
        month = report_month(ctx, zone)
        data = ReportInput(
            month,
            stats_of(ctx.job_context),
            settings.report_institution_name,
            datetime.now(zone),
            _thresholds(settings),
            settings.report_logo_path,
        )
        started = time.perf_counter()
        # reportlab and matplotlib are CPU-bound and synchronous: off the event loop.
        content = await asyncio.to_thread(render_pdf, data)
        path = await asyncio.to_thread(store.write, month.file_name, content)
        seconds = round(time.perf_counter() - started, 3)
        ctx.job_context[REPORT_KEY] = {
            "fileName": month.file_name,
            "path": str(path),
            "sizeBytes": len(content),
            "generationSeconds": seconds,
        }
        add_counts(ctx, {"pdfBytes": len(content)})
        ctx.count(write=1)
        log.info("report_written", path=str(path), bytes=len(content), seconds=seconds)
        return RepeatStatus.FINISHED

    return TaskletStep("generatePdfStep", generate)


def _event_step(settings: DoctoralSettings, userdb: Database, zone: Any) -> TaskletStep:
    async def publish(ctx: StepContext) -> RepeatStatus:
        month, report = report_month(ctx, zone), _report_of(ctx)
        recipients = await admin_emails(userdb, settings.report_recipients)
        events = report_events(
            recipients,
            month,
            report["fileName"],
            download_url(settings, report["fileName"]),
            int(report["sizeBytes"]),
            ctx.job_execution.id,
        )
        if events:
            topic = settings.notifications_topic
            await enqueue_many(
                await ctx.session(),
                [OutboxEvent(topic, str(month), e.to_json()) for e in events],
            )
        add_counts(ctx, {"events": len(events)})
        return RepeatStatus.FINISHED

    return TaskletStep("publishReportEventStep", publish)


def _mail_step(
    settings: DoctoralSettings,
    batchdb: Database,
    userdb: Database,
    mailer: Mailer,
    store: ReportStore,
    zone: Any,
) -> TaskletStep:
    async def send(ctx: StepContext) -> RepeatStatus:
        month, report = report_month(ctx, zone), _report_of(ctx)
        name = str(report["fileName"])
        content = await asyncio.to_thread(store.read, name)
        recipients = await admin_emails(userdb, settings.report_recipients)
        if not recipients:
            log.warning("report_no_recipient", month=str(month))
        subject, body = mail_text(
            month,
            settings.report_institution_name,
            download_url(settings, name),
            stats_of(ctx.job_context),
            _thresholds(settings),
        )
        outcome = await deliver_all(
            batchdb, mailer, recipients, month, name, content, subject, body, ctx.job_execution.id
        )
        if outcome.failed:
            shown = "; ".join(f"{to}: {why}" for to, why in outcome.failed.items())
            raise DeliveryFailed(
                f"report {name} not delivered to {len(outcome.failed)} of {len(recipients)} "
                f"recipient(s) ({len(outcome.sent)} sent now, {len(outcome.already)} earlier); "
                f"restart to retry them: {shown}"[:1500]
            )
        add_counts(
            ctx,
            {
                "mail.sent": len(outcome.sent),
                "mail.alreadySent": len(outcome.already),
                "mail.skipped": len(outcome.skipped),
            },
        )
        ctx.count(read=len(recipients), write=len(outcome.sent))
        return RepeatStatus.FINISHED

    return TaskletStep("sendReportMailStep", send)


def build(
    sources: Sources,
    settings: DoctoralSettings,
    mailer: Mailer,
    listeners: Sequence[BatchListener] = (),
) -> JobSpec:
    zone = settings.batch.zone
    store = ReportStore(settings.reports_directory)
    steps = [_collect_step(c, sources, zone) for c in CATEGORY_STEPS]
    steps += [
        _pdf_step(settings, store, zone),
        _event_step(settings, sources.userdb, zone),
        _mail_step(settings, sources.batchdb, sources.userdb, mailer, store, zone),
    ]
    job = Job(JOB_NAME, steps, listeners=listeners, description=DESCRIPTION)
    return JobSpec(job, settings.monthly_report_cron, DESCRIPTION)
