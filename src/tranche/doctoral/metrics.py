"""The doctoral jobs' own metrics, beside the engine's (``tranche.batch.metrics``).

The engine counts executions, durations, items and last status per job in the
process that ran them; this adds what only the jobs know — their counts (tokens
deleted per table, alerts per type, blocks, notifications) — and the original's
global gauges ``batch_jobs_scheduled`` and ``batch_jobs_success_rate``.

:meth:`DoctoralMetrics.refresh` reads batchdb, so the service's metrics also show
what other replicas and ``tranche job run`` did: ``batch_jobs_success_rate`` over the
whole ``job_execution_history``, ``batch_job_last_status`` and
``batch_job_items_processed`` from each job's latest history row (or its running
execution), ``batch_jobs_active`` from the executions running anywhere. The app
refreshes every 15 s and after crash recovery.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge

from tranche.batch import BatchStatus, JobExecution, JobRepository
from tranche.batch.metrics import LAST_STATUS_CODES, families
from tranche.core.db import Database
from tranche.doctoral import history
from tranche.doctoral.models import job_execution_history as H

__all__ = ["DoctoralMetrics"]


class DoctoralMetrics:
    def __init__(self, registry: CollectorRegistry, scheduled_jobs: Iterable[str] = ()) -> None:
        self.registry = registry
        self.counts = Counter(
            "batch_job_results",
            "What the jobs did: tokens deleted, alerts by type, blocks, notifications",
            ["job", "what"],
            registry=registry,
        )
        self.scheduled = Gauge(
            "batch_jobs_scheduled", "Jobs with a cron schedule in this process", registry=registry
        )
        self.success_rate = Gauge(
            "batch_jobs_success_rate",
            "COMPLETED share of the executions in job_execution_history (0-100), all replicas",
            registry=registry,
        )
        self.scheduled.set(len(list(scheduled_jobs)))

    def finished(self, execution: JobExecution, counts: dict[str, int]) -> None:
        for what, n in counts.items():
            self.counts.labels(execution.job_name, what).inc(n)

    async def refresh(self, batchdb: Database, repository: JobRepository, jobs: list[str]) -> None:
        """Set the global and per-job gauges from batchdb (every replica's and CLI's runs)."""
        engine = families(self.registry)
        s = await history.summary(batchdb)
        self.success_rate.set(round(100.0 * s.completed / s.total, 2) if s.total else 0.0)
        running = await repository.find_running_executions()
        engine.active.set(len(running))
        running_jobs = {e.job_name for e in running}
        latest = (
            sa.select(H.c.job_name, sa.func.max(H.c.job_execution_id).label("last"))
            .where(H.c.job_name.in_(jobs))
            .group_by(H.c.job_name)
            .subquery()
        )
        query = sa.select(H.c.job_name, H.c.status, H.c.items_processed).join(
            latest,
            sa.and_(H.c.job_name == latest.c.job_name, H.c.job_execution_id == latest.c.last),
        )
        async with batchdb.sessions() as session:
            rows = (await session.execute(query)).all()
        for row in rows:
            engine.processed.labels(row.job_name).set(int(row.items_processed))
            if row.job_name not in running_jobs:
                status = BatchStatus(row.status)
                engine.last_status.labels(row.job_name).set(LAST_STATUS_CODES.get(status, 0))
        for job in running_jobs & set(jobs):
            engine.last_status.labels(job).set(3)
