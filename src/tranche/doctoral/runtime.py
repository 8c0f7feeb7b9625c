"""Everything the doctoral jobs need, wired once: databases, jobs, launcher, audit, metrics.

The app, ``tranche job run``, the demo and the benchmark all build a
:class:`Runtime` from settings, so a job runs the same way whichever door it
came in by.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from tranche.batch import (
    BatchListener,
    Clock,
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
from tranche.doctoral.durations import Thresholds
from tranche.doctoral.jobs import data_consistency, duree_alert, token_cleanup
from tranche.doctoral.jobs.common import RUN_AT, JobSpec
from tranche.doctoral.listeners import TRIGGERED_BY, AnomalyNotifier, FailureNotifier, RunRecorder
from tranche.doctoral.mail import Mailer
from tranche.doctoral.metrics import DoctoralMetrics
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import Sources

__all__ = ["Runtime"]

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
    ) -> Runtime:
        sources = Sources.open(settings.database_urls(), settings.pool())
        audit = AuditLog(sources.batchdb, clock)
        mailer = Mailer(settings)
        thresholds = Thresholds(
            settings.alert_3_years_from_months,
            settings.alert_3_years_until_months,
            settings.alert_6_years_from_months,
            settings.max_duration_months,
        )
        topic, admins = settings.notifications_topic, list(settings.admin_emails)
        anomalies: list[BatchListener] = [
            AnomalyNotifier(
                sources.batchdb,
                sources.userdb,
                topic,
                admins,
                duree_alert.ANOMALIES_KEY,
                "Enrollments in an alert window whose doctorant and director are both "
                "missing from userdb: nobody could be notified.",
            )
        ]
        registry = registry or CollectorRegistry()
        specs = [
            token_cleanup.build(
                sources.userdb, settings.token_cleanup_chunk_size, settings.token_cleanup_cron
            ),
            duree_alert.build(
                sources.batchdb,
                sources.inscription_db,
                sources.userdb,
                thresholds,
                topic,
                settings.duree_alert_chunk_size,
                settings.duree_alert_cron,
                anomalies,
            ),
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
                JobMetrics(registry),
                RunRecorder(sources.batchdb, audit, metrics),
                FailureNotifier(sources.batchdb, sources.userdb, topic, admins, mailer),
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

    async def close(self) -> None:
        await self.scheduler.stop()
        await self.launcher.close()
        await self.sources.close()


def _scheduled_parameters(fire: datetime) -> dict[str, ParameterValue | JobParameter]:
    """A scheduled run works relative to its occurrence, so a late or restarted one agrees."""
    return {RUN_AT: fire, TRIGGERED_BY: JobParameter("scheduler", identifying=False)}
