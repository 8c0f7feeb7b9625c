"""The doctoral jobs' own metrics, beside the engine's (``tranche.batch.metrics``).

The engine counts executions, durations, items and last status per job; this
adds what only the jobs know — their counts (tokens deleted per table, alerts
per type, blocks, notifications) — and the original's global gauges
``batch.jobs.scheduled`` and ``batch.jobs.success.rate``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from tranche.batch import BatchStatus, JobExecution

__all__ = ["DoctoralMetrics"]


class DoctoralMetrics:
    def __init__(self, registry: CollectorRegistry, scheduled_jobs: Iterable[str] = ()) -> None:
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
            "COMPLETED share of the executions finished by this process (0-100)",
            registry=registry,
        )
        self.scheduled.set(len(list(scheduled_jobs)))
        self._finished = 0
        self._completed = 0

    def finished(self, execution: JobExecution, counts: dict[str, int]) -> None:
        self._finished += 1
        if execution.status is BatchStatus.COMPLETED:
            self._completed += 1
        self.success_rate.set(100.0 * self._completed / self._finished)
        for what, n in counts.items():
            self.counts.labels(execution.job_name, what).inc(n)
