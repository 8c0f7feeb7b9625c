"""Prometheus metrics of job executions, as a listener (register it on the launcher).

Names follow Prometheus conventions for the original's Micrometer meters
(``batch.job.executions.total``, ``batch.job.duration``, ``batch.job.last.status``,
``batch.jobs.active``). ``batch_job_last_status`` keeps the original's codes: 0 unknown,
1 completed, 2 failed, 3 running, plus 4 stopped and 5 abandoned.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tranche.batch.listeners import BatchListener
from tranche.batch.model import BatchStatus, JobExecution

__all__ = ["LAST_STATUS_CODES", "JobMetrics", "families"]

LAST_STATUS_CODES = {
    BatchStatus.COMPLETED: 1,
    BatchStatus.FAILED: 2,
    BatchStatus.STARTING: 3,
    BatchStatus.STARTED: 3,
    BatchStatus.STOPPING: 3,
    BatchStatus.STOPPED: 4,
    BatchStatus.ABANDONED: 5,
}
_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 14400)


@dataclass
class _Families:
    executions: Counter
    duration: Histogram
    read: Counter
    written: Counter
    skipped: Counter
    filtered: Counter
    last_status: Gauge
    last_success: Gauge
    active: Gauge
    processed: Gauge


_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, _Families] = weakref.WeakKeyDictionary()


def families(registry: CollectorRegistry) -> _Families:
    """The engine's metric families in ``registry`` (created once per registry)."""
    return _families(registry)


def _families(registry: CollectorRegistry) -> _Families:
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _Families(
            executions=Counter(
                "batch_job_executions",
                "Finished job executions by final status",
                ["job", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "batch_job_duration_seconds",
                "Wall time of job executions",
                ["job", "status"],
                buckets=_BUCKETS,
                registry=registry,
            ),
            read=Counter("batch_job_items_read", "Items read", ["job"], registry=registry),
            written=Counter("batch_job_items_written", "Items written", ["job"], registry=registry),
            skipped=Counter(
                "batch_job_items_skipped",
                "Items skipped (read, process or write)",
                ["job"],
                registry=registry,
            ),
            filtered=Counter(
                "batch_job_items_filtered",
                "Items filtered by the processor",
                ["job"],
                registry=registry,
            ),
            last_status=Gauge(
                "batch_job_last_status",
                "Last status: 0 unknown, 1 completed, 2 failed, 3 running, 4 stopped, 5 abandoned",
                ["job"],
                registry=registry,
            ),
            last_success=Gauge(
                "batch_job_last_success_timestamp_seconds",
                "End of the last COMPLETED execution (Unix time)",
                ["job"],
                registry=registry,
            ),
            active=Gauge(
                "batch_jobs_active",
                "Executions running (this process live; all replicas when refreshed from batchdb)",
                registry=registry,
            ),
            processed=Gauge(
                "batch_job_items_processed",
                "Items read by the job's last finished execution",
                ["job"],
                registry=registry,
            ),
        )
        _BY_REGISTRY[registry] = found
    return found


class JobMetrics(BatchListener):
    """Counts executions and items per job; create one per registry, register it once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._m = _families(registry)
        self._active: set[int] = set()

    async def before_job(self, execution: JobExecution) -> None:
        self._active.add(execution.id)
        self._m.active.inc()
        self._m.last_status.labels(execution.job_name).set(3)

    async def after_job(self, execution: JobExecution) -> None:
        job, status = execution.job_name, execution.status.value
        if execution.id in self._active:
            self._active.discard(execution.id)
            self._m.active.dec()
        totals = execution.totals()
        self._m.read.labels(job).inc(totals["read_count"])
        self._m.written.labels(job).inc(totals["write_count"])
        self._m.filtered.labels(job).inc(totals["filter_count"])
        self._m.skipped.labels(job).inc(
            totals["read_skip_count"] + totals["process_skip_count"] + totals["write_skip_count"]
        )
        self._m.executions.labels(job, status).inc()
        if execution.duration is not None:
            self._m.duration.labels(job, status).observe(execution.duration.total_seconds())
        self._m.last_status.labels(job).set(LAST_STATUS_CODES.get(execution.status, 0))
        self._m.processed.labels(job).set(totals["read_count"])
        if execution.status is BatchStatus.COMPLETED and execution.end_time is not None:
            self._m.last_success.labels(job).set(execution.end_time.timestamp())
