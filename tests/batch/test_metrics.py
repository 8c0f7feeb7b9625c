from __future__ import annotations

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, BadItem, Injector, counting_job
from tests.fixtures.waiting import eventually
from tranche.batch import BatchListener, JobExecution, JobLauncher, JobMetrics, JobRepository
from tranche.batch.job import SkipPolicy


async def test_metrics_listener_counts_executions_items_and_status(engine: AsyncEngine) -> None:
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    assert JobMetrics(registry)  # a second one on the same registry reuses the families
    seen_active: list[float | None] = []

    class Probe(BatchListener):
        async def before_job(self, execution: JobExecution) -> None:
            seen_active.append(registry.get_sample_value("batch_jobs_active"))

    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS, listeners=[metrics, Probe()])
    skip = SkipPolicy((BadItem,), limit=5)
    await launcher.run(counting_job("metricJob", 10, 4, Injector({3}, BadItem), skip=skip))
    await launcher.run(counting_job("metricJob2", 4, 2, Injector({1})))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("batch_job_executions_total", job="metricJob", status="COMPLETED") == 1
    assert value("batch_job_executions_total", job="metricJob2", status="FAILED") == 1
    assert value("batch_job_items_read_total", job="metricJob") == 10
    assert value("batch_job_items_written_total", job="metricJob") == 9
    assert value("batch_job_items_skipped_total", job="metricJob") == 1
    assert value("batch_job_last_status", job="metricJob") == 1
    assert value("batch_job_last_status", job="metricJob2") == 2
    assert value("batch_job_duration_seconds_count", job="metricJob", status="COMPLETED") == 1
    assert (value("batch_job_last_success_timestamp_seconds", job="metricJob") or 0) > 0
    assert seen_active == [1.0, 1.0]
    await eventually(lambda: value("batch_jobs_active"), 30, "no job active", until=0)
    assert value("batch_jobs_active") == 0
