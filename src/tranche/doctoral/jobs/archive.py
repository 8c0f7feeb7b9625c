"""archiveJob: closed enrollments and defenses archived (encrypted, verifiable), old logs purged.

Four steps, quarterly (``0 0 3 1 1,4,7,10 ?``), chunks of 20 (the seed's):

1. ``archiveEnrollmentsStep`` and 2. ``archiveDefensesStep`` — candidates
   (:mod:`tranche.doctoral.archive.readers`), their related rows and files
   (:mod:`~tranche.doctoral.archive.records`), one AES-256 ZIP each, the
   archive rows and audit trail, then the originals' files
   (:mod:`~tranche.doctoral.archive.writer` explains the crash-safe order).
   A record whose document is missing is skipped (and stays a candidate) up
   to 5 times per step, the original's skip limit; the sixth fails the step.
3. ``cleanupLogsStep`` (:mod:`~tranche.doctoral.archive.cleanup`).
4. ``optimizeDatabaseStep`` (:mod:`~tranche.doctoral.archive.maintenance`).

The master key is read at each archive step's start: with none configured the
step fails saying which setting to set, before anything is touched.
:class:`ArchiveJobListener` adds the bytes freed to the run's counts and
feeds the metrics ``batch_archive_records_total{entity}`` and
``batch_archive_bytes_freed_total``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter

from tranche.batch.job import ChunkStep, Job, SkipPolicy, Step, TaskletStep
from tranche.batch.listeners import BatchListener
from tranche.batch.model import JobExecution, StepExecution
from tranche.batch.readers import KeysetReader
from tranche.batch.uow import StepContext
from tranche.core.logging import get_logger
from tranche.doctoral.archive.cleanup import CleanupPolicy, LogCleanup
from tranche.doctoral.archive.keys import Keyring
from tranche.doctoral.archive.maintenance import Maintenance, TouchedTable
from tranche.doctoral.archive.models import (
    archive_audit_trail,
    defense_archive,
    inscription_archive,
)
from tranche.doctoral.archive.readers import (
    candidate_reader,
    defense_candidates,
    enrollment_candidates,
)
from tranche.doctoral.archive.records import (
    DEFENSE,
    ENROLLMENT,
    ArchiveRecord,
    MissingDocumentError,
    RecordLoader,
)
from tranche.doctoral.archive.writer import ArchiveWriter
from tranche.doctoral.durations import add_months
from tranche.doctoral.jobs.common import COUNTS_KEY, JobSpec, add_counts, counts_of, run_at
from tranche.doctoral.models import utc_naive
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.sources import Sources
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

__all__ = ["DESCRIPTION", "JOB_NAME", "ArchiveJobListener", "build", "keyring_of"]

log = get_logger(__name__)

JOB_NAME = "archiveJob"
DESCRIPTION = (
    "Archives enrollments and defenses closed for over a year (AES-256 ZIP per record), "
    "purges old logs and optimises the tables it touched"
)
SKIP_LIMIT = 5
_ARCHIVED_KEY = {ENROLLMENT: "enrollmentsArchived", DEFENSE: "defensesArchived"}


def keyring_of(settings: DoctoralSettings) -> Keyring:
    return Keyring.load(settings.archive_keys, settings.archive_key_file, settings.archive_key_id)


def _cutoff(at: datetime, months: int) -> datetime:
    naive = utc_naive(at)
    return datetime.combine(add_months(naive.date(), -months), naive.time())


@dataclass
class ArchiveJobListener(BatchListener):
    """Bytes freed into the counts (from the audit trail: exact across crashes), and metrics."""

    sources: Sources
    records: Counter
    freed: Counter
    _before: dict[int, dict[str, int]] = field(default_factory=dict)

    async def before_job(self, execution: JobExecution) -> None:
        self._before[execution.id] = counts_of(execution)

    async def after_job(self, execution: JobExecution) -> None:
        before = self._before.pop(execution.id, {})
        t = archive_audit_trail.c
        query = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(t.uncompressed_size), 0)
        ).where(t.job_execution_id == execution.id, t.action == "ORIGINALS_REMOVED")
        async with self.sources.batchdb.sessions() as s:
            removed, freed = (await s.execute(query)).one()
        counts = counts_of(execution)
        counts["bytesFreed"] = before.get("bytesFreed", 0) + int(freed)
        counts["originalsRemoved"] = before.get("originalsRemoved", 0) + int(removed)
        execution.context[COUNTS_KEY] = {k: v for k, v in counts.items() if v}
        for entity, key in _ARCHIVED_KEY.items():
            fresh = counts.get(key, 0) - before.get(key, 0)
            if fresh > 0:
                self.records.labels(entity.lower()).inc(fresh)
        if freed:
            self.freed.inc(int(freed))
        log.info(
            "archive_job_summary",
            execution_id=execution.id,
            enrollments_archived=counts.get("enrollmentsArchived", 0),
            defenses_archived=counts.get("defensesArchived", 0),
            bytes_freed=counts["bytesFreed"],
        )


class _CountingWriter(ArchiveWriter):
    async def write(self, records: Sequence[ArchiveRecord], ctx: StepContext) -> None:
        await super().write(records, ctx)
        add_counts(ctx, {_ARCHIVED_KEY[self.entity]: len(records)})


class _SkipLogger(BatchListener):
    async def on_skip_in_process(
        self, step: StepExecution, item: Any, error: BaseException
    ) -> None:
        log.warning("archive_record_skipped", step=step.step_name, id=item, reason=str(error))


def _archive_step(
    name: str,
    writer: ArchiveWriter,
    reader: Any,
    process: Any,
    chunk_size: int,
) -> ChunkStep[int, ArchiveRecord]:
    return ChunkStep(
        name,
        reader=reader,
        processor=process,
        writer=writer.write,
        chunk_size=chunk_size,
        skip=SkipPolicy(skip_on=(MissingDocumentError,), limit=SKIP_LIMIT),
        listeners=[writer, _SkipLogger()],
    )


def build(
    sources: Sources,
    settings: DoctoralSettings,
    registry: CollectorRegistry,
    listeners: Sequence[BatchListener] = (),
) -> JobSpec:
    batchdb, chunk = sources.batchdb, settings.archive_chunk_size
    months = settings.archive_after_months
    loader = RecordLoader(
        sources.inscription_db, sources.defensedb, settings.uploads_path, settings.pv_storage_path
    )

    def keyring() -> Keyring:
        return keyring_of(settings)

    def writer(entity: str, table: sa.Table) -> ArchiveWriter:
        return _CountingWriter(entity, table, batchdb, keyring, settings.archives_path)

    def enrollments(ctx: StepContext) -> KeysetReader[int]:
        query = enrollment_candidates(_cutoff(run_at(ctx), months))
        return candidate_reader(
            sources.inscription_db, query, I.inscriptions.c.id, batchdb, inscription_archive, chunk
        )

    def defenses(ctx: StepContext) -> KeysetReader[int]:
        query = defense_candidates(_cutoff(run_at(ctx), months))
        return candidate_reader(
            sources.defensedb, query, D.defenses.c.id, batchdb, defense_archive, chunk
        )

    policy = CleanupPolicy(
        settings.sent_notification_retention_months,
        settings.application_log_retention_months,
        settings.user_audit_retention_days,
        settings.application_log_dir,
        tuple(settings.error_log_patterns),
    )
    touched = [
        TouchedTable(batchdb, "inscription_archive", ("enrollmentsArchived",)),
        TouchedTable(batchdb, "defense_archive", ("defensesArchived",)),
        TouchedTable(batchdb, "archive_audit_trail", ("enrollmentsArchived", "defensesArchived")),
        TouchedTable(sources.notification_db, "notifications", ("notificationsDeleted",)),
        TouchedTable(sources.userdb, "user_audits", ("userAuditsDeleted",)),
    ]
    steps: list[Step] = [
        _archive_step(
            "archiveEnrollmentsStep",
            writer(ENROLLMENT, inscription_archive),
            enrollments,
            loader.enrollment,
            chunk,
        ),
        _archive_step(
            "archiveDefensesStep", writer(DEFENSE, defense_archive), defenses, loader.defense, chunk
        ),
        TaskletStep("cleanupLogsStep", LogCleanup(sources.notification_db, sources.userdb, policy)),
        TaskletStep(
            "optimizeDatabaseStep",
            Maintenance(touched, lambda ctx: counts_of(ctx.job_execution)),
        ),
    ]
    job_listener = ArchiveJobListener(
        sources,
        Counter(
            "batch_archive_records",
            "Records archived by archiveJob",
            ["entity"],
            registry=registry,
        ),
        Counter(
            "batch_archive_bytes_freed",
            "Bytes of owners' files removed once archived",
            registry=registry,
        ),
    )

    async def estimate(at: datetime) -> int:
        cutoff = _cutoff(at, months)
        total = 0
        for db, query in (
            (sources.inscription_db, enrollment_candidates(cutoff)),
            (sources.defensedb, defense_candidates(cutoff)),
        ):
            async with db.sessions() as s:
                counted = sa.select(sa.func.count()).select_from(query.subquery())
                total += int((await s.execute(counted)).scalar_one())
        return total

    job = Job(JOB_NAME, steps, listeners=[*listeners, job_listener], description=DESCRIPTION)
    return JobSpec(job, settings.archive_cron, DESCRIPTION, estimate)
