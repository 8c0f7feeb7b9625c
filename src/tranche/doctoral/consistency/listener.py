"""dataConsistencyJob's listener: anomalies total, auto-corrected and needing a person, per check.

Prometheus: ``batch_consistency_anomalies_total{check, resolution}`` counts
every anomaly found (resolution ``corrected`` or ``manual``) and
``batch_consistency_last_run_anomalies{check, resolution}`` holds the last
run's numbers, so a dashboard shows both the trend and today's state. A dry
run counts nothing: it corrected nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from tranche.batch.listeners import BatchListener
from tranche.batch.model import JobExecution
from tranche.core.logging import get_logger
from tranche.doctoral.consistency.anomalies import DRY_RUN_KEY, Check, totals

__all__ = ["ConsistencyListener"]

log = get_logger(__name__)


@dataclass
class ConsistencyListener(BatchListener):
    registry: CollectorRegistry
    _carried: dict[int, dict[Check, tuple[int, int]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.total = Counter(
            "batch_consistency_anomalies",
            "Anomalies found by dataConsistencyJob, by check and resolution",
            ["check", "resolution"],
            registry=self.registry,
        )
        self.last_run = Gauge(
            "batch_consistency_last_run_anomalies",
            "Anomalies found by the last dataConsistencyJob run, by check and resolution",
            ["check", "resolution"],
            registry=self.registry,
        )

    async def before_job(self, execution: JobExecution) -> None:
        # A restart carries the failed attempt's context: count only what is new.
        self._carried[execution.id] = totals(execution.context)

    async def after_job(self, execution: JobExecution) -> None:
        carried = self._carried.pop(execution.id, {})
        found = totals(execution.context)
        dry = bool(execution.context.get(DRY_RUN_KEY, False))
        for check in Check:
            fixed, manual = found.get(check, (0, 0))
            old_fixed, old_manual = carried.get(check, (0, 0))
            if not dry:
                self.total.labels(check.value, "corrected").inc(max(fixed - old_fixed, 0))
                self.total.labels(check.value, "manual").inc(max(manual - old_manual, 0))
                self.last_run.labels(check.value, "corrected").set(fixed)
                self.last_run.labels(check.value, "manual").set(manual)
        log.info(
            "consistency_summary",
            execution_id=execution.id,
            status=execution.status.value,
            dry_run=dry,
            anomalies=sum(f + m for f, m in found.values()),
            corrected=sum(f for f, _ in found.values()),
            manual=sum(m for _, m in found.values()),
            per_check={c.value: {"corrected": f, "manual": m} for c, (f, m) in found.items()},
        )
