"""The jobs fire on the seed's cron expressions, once per occurrence across replicas."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.doctoral.history import rows_by_id
from tranche.doctoral.jobs.common import RUN_AT
from tranche.doctoral.runtime import Runtime

MONDAY_0800 = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)  # a Monday


async def test_occurrences_fire_once_with_their_fire_time_as_run_instant(
    sqlite_databases: Databases,
) -> None:
    settings = sqlite_databases.settings()
    before = MONDAY_0800.replace(hour=7, minute=59, second=30)
    replicas = [
        Runtime.build(settings, CollectorRegistry(), clock=lambda: before) for _ in range(2)
    ]
    try:
        firings = [await r.scheduler.tick(MONDAY_0800.replace(second=2)) for r in replicas]
        outcomes = sorted(f.outcome for batch in firings for f in batch)
        assert outcomes == ["fired-elsewhere", "started"]
        [started] = [f for batch in firings for f in batch if f.outcome == "started"]
        assert (started.job, started.fire_time) == ("dureeDoctoratAlertJob", MONDAY_0800)
        runner = next(
            r for r, batch in zip(replicas, firings, strict=True) if batch[0].execution_id
        )
        assert started.execution_id is not None
        execution = await runner.launcher.wait(started.execution_id)
        assert execution.status is BatchStatus.COMPLETED
        assert execution.parameters.value(RUN_AT) == MONDAY_0800
        history = await rows_by_id(runner.sources.batchdb, [execution.id])
        assert history[execution.id].triggered_by == "scheduler"

        next_fire = replicas[0].scheduler.next_fire_times(MONDAY_0800)
        assert next_fire["tokenCleanupJob"] == datetime(2025, 3, 18, 2, 0, tzinfo=UTC)
        assert next_fire["dureeDoctoratAlertJob"] == datetime(2025, 3, 24, 8, 0, tzinfo=UTC)
        assert next_fire["dataConsistencyJob"] == datetime(2025, 3, 17, 23, 0, tzinfo=UTC)
    finally:
        for r in replicas:
            await r.close()
