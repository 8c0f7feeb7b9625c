"""After each monthlyReportJob run: the report's size, generation time and recipients reached.

Logged and exported to Prometheus (beside the engine's ``batch_job_*``). The
recipients come from ``report_deliveries`` rows this execution wrote, so a
failed run, whose counts roll back with its step, still reports who was reached.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from tranche.batch.listeners import BatchListener
from tranche.batch.model import JobExecution
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.jobs import monthly_report as MR
from tranche.doctoral.reports.deliveries import deliveries_of

__all__ = ["ReportListener", "ReportMetrics"]

log = get_logger(__name__)


class ReportMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.size = Gauge(
            "batch_report_pdf_size_bytes", "Size of the last monthly report PDF", registry=registry
        )
        self.seconds = Gauge(
            "batch_report_generation_seconds",
            "Time to draw and write the last monthly report PDF",
            registry=registry,
        )
        self.recipients = Counter(
            "batch_report_recipients",
            "Monthly report mails by outcome (SENT, FAILED, SKIPPED)",
            ["status"],
            registry=registry,
        )


@dataclass
class ReportListener(BatchListener):
    batchdb: Database
    metrics: ReportMetrics

    async def after_job(self, execution: JobExecution) -> None:
        if execution.job_name != MR.JOB_NAME:
            return
        month = execution.context.get(MR.MONTH_KEY)
        report = execution.context.get(MR.REPORT_KEY)
        outcome: dict[str, int] = {}
        if isinstance(month, str):
            for d in await deliveries_of(self.batchdb, month):
                if d.job_execution_id == execution.id:
                    outcome[d.status] = outcome.get(d.status, 0) + 1
        for status, n in outcome.items():
            self.metrics.recipients.labels(status).inc(n)
        size = seconds = None
        if isinstance(report, dict):
            size, seconds = int(report["sizeBytes"]), float(report["generationSeconds"])
            self.metrics.size.set(size)
            self.metrics.seconds.set(seconds)
        log.info(
            "monthly_report_finished",
            execution_id=execution.id,
            status=execution.status.value,
            month=month,
            pdf_bytes=size,
            generation_seconds=seconds,
            recipients=outcome,
        )
