"""The service's metrics show every replica's and the CLI's runs, under the original's names.

A run made by another process (a second Runtime on the same databases, as ``tranche
job run`` builds one) is invisible to the service's in-process counters; after a
refresh from batchdb the service exports its last status, its items and a success
rate computed over the whole history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from tests.doctoral.harness import Running
from tranche.batch import BatchStatus

RUN = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


async def test_runs_of_another_process_are_in_the_service_metrics(
    make_runtime: Any, tmp_path: Path
) -> None:
    service: Running = await make_runtime()
    cli: Running = await make_runtime()  # another process: its own registry and launcher
    broken: Running = await make_runtime(user_db_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    owner = await service.portal.user()
    assert owner
    ok = await cli.runtime.launcher.run(
        cli.runtime.spec("tokenCleanupJob").job, cli.runtime.parameters("cli:ops", at=RUN)
    )
    assert ok.status is BatchStatus.COMPLETED
    failed = await broken.runtime.launcher.run(
        broken.runtime.spec("tokenCleanupJob").job,
        broken.runtime.parameters("cli:ops", at=RUN + timedelta(hours=1)),
    )
    assert failed.status is BatchStatus.FAILED

    sample = service.registry.get_sample_value
    assert sample("batch_job_last_status", {"job": "tokenCleanupJob"}) is None
    await service.runtime.refresh_metrics()
    # The latest run of the job (the broken one) failed: 2; one of two completed: 50 %.
    assert sample("batch_job_last_status", {"job": "tokenCleanupJob"}) == 2.0
    assert sample("batch_job_items_processed", {"job": "tokenCleanupJob"}) == 0.0
    rate = sample("batch_jobs_success_rate")
    assert rate is not None and 0 < rate < 100
    assert sample("batch_jobs_active") == 0.0

    # The process that ran a job exports the original's names.
    text = generate_latest(cli.registry).decode()
    for name in (
        'batch_job_executions_total{job="tokenCleanupJob",status="COMPLETED"} 1.0',
        "batch_job_duration_seconds_bucket",
        'batch_job_items_processed{job="tokenCleanupJob"}',
        'batch_job_last_status{job="tokenCleanupJob"} 1.0',
        "batch_jobs_active 0.0",
        "batch_jobs_success_rate",
    ):
        assert name in text, name
