"""Everything the doctoral jobs need, wired once: databases, jobs, launcher, audit, metrics.

The app, ``tranche job run``, the demo and the benchmark all build a
:class:`Runtime` from settings, so a job runs the same way whichever door it
came in by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from tranche.batch import (
    BatchListener,
    Clock,
    JobExecution,
    JobLauncher,
    JobParameter,
    JobParameters,
    JobRepository,
    NoSuchJobError,
    utc_now,
)
from tranche.batch.metrics import JobMetrics
from tranche.batch.model import ParameterValue
from tranche.batch.scheduler import JobScheduler, Schedule
from tranche.core.logging import get_logger
from tranche.doctoral.audit import AuditLog
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.consistency.listener import ConsistencyListener
from tranche.doctoral.durations import AlertRule, OwnerThresholds, Rule, Thresholds
from tranche.doctoral.jobs import (
    archive,
    data_consistency,
    duree_alert,
    monthly_report,
    token_cleanup,
)
from tranche.doctoral.jobs.common import RUN_AT, JobSpec, StepPolicies
from tranche.doctoral.listeners import (
    TRIGGERED_BY,
    AnomalyNotifier,
    FailureNotifier,
    ProgressEstimator,
    RunRecorder,
)
from tranche.doctoral.mail import Mailer
from tranche.doctoral.metrics import DoctoralMetrics
from tranche.doctoral.reports.listener import ReportListener, ReportMetrics
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import Sources

__all__ = ["Runtime", "alert_rule", "policies"]

log = get_logger(__name__)


@dataclass
class Runtime:
    settings: DoctoralSettings
    sources: Sources
    audit: AuditLog
    metrics: DoctoralMetrics
    repository: JobRepository
    launcher: JobLauncher
    scheduler: JobScheduler
    specs: dict[str, JobSpec]
    mailer: Mailer
    clock: Clock

    @classmethod
    def build(
        cls,
        settings: DoctoralSettings,
        registry: CollectorRegistry | None = None,
        clock: Clock = utc_now,
        listeners: Sequence[BatchListener] = (),
    ) -> Runtime:
        """``listeners`` are added to every job's (a progress display, a test's probe)."""
        sources = Sources.open(settings.database_urls(), settings.pool())
        registry = registry or CollectorRegistry()
        audit = AuditLog(sources.batchdb, clock)
        mailer = Mailer(settings)
        registry = registry or CollectorRegistry()
        rule = alert_rule(settings)
        topic, admins = settings.notifications_topic, list(settings.admin_emails)
        anomalies: list[BatchListener] = [
            AnomalyNotifier(
                sources.batchdb,
                sources.userdb,
                topic,
                admins,
                duree_alert.ANOMALIES_KEY,
                "Inscriptions ayant atteint un seuil de durée dont ni le doctorant ni le "
                "directeur de thèse n'a pu être prévenu ; elles seront reprises à la "
                "prochaine exécution.",
            )
        ]
        registry = registry or CollectorRegistry()
        specs = [
            token_cleanup.build(
                sources.userdb,
                settings.token_cleanup_chunk_size,
                settings.token_cleanup_cron,
                policies=policies(settings, settings.token_cleanup_skip_limit),
                one_transaction=settings.token_cleanup_one_transaction,
            ),
            duree_alert.build(
                sources.batchdb,
                sources.inscription_db,
                sources.userdb,
                sources.defensedb,
                rule,
                topic,
                settings.duree_alert_chunk_size,
                settings.duree_alert_cron,
                anomalies,
                settings.batch.zone,
                policies(settings, settings.duree_alert_skip_limit),
                one_transaction=settings.duree_alert_one_transaction,
            ),
            monthly_report.build(
                sources,
                settings,
                mailer,
                [ReportListener(sources.batchdb, ReportMetrics(registry))],
            ),
            archive.build(sources, settings, registry),
            data_consistency.build(
                Deps(sources, settings, mailer),
                settings.data_consistency_cron,
                [ConsistencyListener(registry)],
            ),
        ]
        metrics = DoctoralMetrics(
            registry, [s.name for s in specs] if settings.batch.scheduler_enabled else []
        )
        repository = JobRepository(sources.batchdb.engine, clock=clock)
        launcher = JobLauncher(
            repository,
            [s.job for s in specs],
            settings=settings.batch,
            listeners=[
                ProgressEstimator({s.name: s.estimate for s in specs}),
                JobMetrics(registry),
                RunRecorder(sources.batchdb, audit, metrics),
                FailureNotifier(sources.batchdb, sources.userdb, topic, admins, mailer, audit),
                *listeners,
            ],
        )
        scheduler = JobScheduler(
            launcher,
            [Schedule(s.name, s.cron, _scheduled_parameters) for s in specs],
            settings=settings.batch,
            clock=clock,
        )
        return cls(
            settings,
            sources,
            audit,
            metrics,
            repository,
            launcher,
            scheduler,
            {s.name: s for s in specs},
            mailer,
            clock,
        )

    def spec(self, job_name: str) -> JobSpec:
        try:
            return self.specs[job_name]
        except KeyError:
            raise NoSuchJobError(job_name, list(self.specs)) from None

    def parameters(
        self,
        triggered_by: str,
        at: datetime | None = None,
        extra: Mapping[str, ParameterValue] | None = None,
    ) -> JobParameters:
        """A new job instance per run (``runAt`` identifies it); who asked is informative.

        ``extra`` are the job's own identifying parameters (e.g. ``dryRun``).
        """
        when = (at or self.clock()).astimezone(UTC)
        values: dict[str, ParameterValue | JobParameter] = dict(extra or {})
        values.update(
            {RUN_AT: when, TRIGGERED_BY: JobParameter(triggered_by[:200], identifying=False)}
        )
        return JobParameters(values)

    async def start(
        self,
        job_name: str,
        triggered_by: str,
        at: datetime | None = None,
        extra: Mapping[str, ParameterValue] | None = None,
    ) -> int:
        """Start ``job_name`` in the background; the execution id."""
        spec = self.spec(job_name)
        return await self.launcher.start(spec.job, self.parameters(triggered_by, at, extra))

    async def recover(self) -> list[JobExecution]:
        """Crash recovery at start: executions whose process died end FAILED (``CRASHED``),
        with their history row, audit row, failure event and mail, and metrics."""
        try:
            found = await self.launcher.recover()
        except Exception as exc:
            # batchdb down at start: the scheduler's ticks and the next launch try again.
            log.warning("crash_recovery_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return []
        if found:
            log.warning("crashed_executions_recovered", executions=[e.id for e in found])
        await self.refresh_metrics()
        return found

    async def refresh_metrics(self) -> None:
        """The gauges from batchdb: every replica's and the CLI's runs (never raises)."""
        try:
            await self.metrics.refresh(self.sources.batchdb, self.repository, list(self.specs))
        except Exception as exc:
            log.warning("metrics_refresh_failed", error=f"{type(exc).__name__}: {exc}"[:300])

    async def refresh_metrics_forever(self, interval_s: float = 15.0) -> None:
        task = asyncio.current_task()
        while True:
            await self.refresh_metrics()
            # A cancel that reached us inside a driver call can come back as an ordinary
            # error, which refresh_metrics logs and swallows: honour it here, or the
            # shutdown that cancelled this task would wait for it for ever.
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        await self.scheduler.stop()
        await self.launcher.close()
        await self.sources.close()


def _scheduled_parameters(fire: datetime) -> dict[str, ParameterValue | JobParameter]:
    """A scheduled run works relative to its occurrence, so a late or restarted one agrees."""
    return {RUN_AT: fire, TRIGGERED_BY: JobParameter("scheduler", identifying=False)}


def alert_rule(settings: DoctoralSettings) -> AlertRule:
    """The thresholds ``DOCTORAL_DUREE_ALERT_RULE`` chooses."""
    if settings.duree_alert_rule is Rule.LEGACY:
        return Thresholds(
            settings.alert_3_years_from_months,
            settings.alert_3_years_until_months,
            settings.alert_6_years_from_months,
            settings.max_duration_months,
        )
    return OwnerThresholds(
        settings.alert_seuil_3_ans_years,
        settings.alert_seuil_6_ans_years,
        settings.alert_limite_max_years,
    )


def policies(settings: DoctoralSettings, skip_limit: int) -> StepPolicies:
    return StepPolicies(
        settings.job_retry_attempts,
        settings.job_retry_initial_backoff_s,
        settings.job_retry_max_backoff_s,
        skip_limit,
    )
