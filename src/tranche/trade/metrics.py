"""Prometheus metrics of bulk submission to the execution service (seed task 10).

Batch size, batch duration, outcome per batch and per item, whole-batch retries,
individual retries, and the throughput and success rate of the last submission.
The single-versus-bulk comparison is ``tranche bench submit``, not a metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["SubmissionMetrics"]


class SubmissionMetrics:
    """Registered on the service's own registry; ``enabled=False`` records nothing."""

    def __init__(self, registry: CollectorRegistry, enabled: bool = True) -> None:
        self.enabled = enabled
        self.batch_size = Histogram(
            "trade_execution_batch_size",
            "Executions per batch request to the execution service",
            registry=registry,
            buckets=(1, 5, 10, 25, 50, 75, 100, 250, 500, 1000),
        )
        self.batch_duration = Histogram(
            "trade_execution_batch_duration_seconds",
            "Time per batch request, retries included",
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.batches = Counter(
            "trade_execution_batches",
            "Batch requests by outcome (201, 207, 400, 4xx, exhausted, unreadable)",
            ["outcome"],
            registry=registry,
        )
        self.items = Counter(
            "trade_execution_items",
            "Executions submitted, by result (success, failed, exhausted)",
            ["result"],
            registry=registry,
        )
        self.batch_retries = Counter(
            "trade_execution_batch_retries",
            "Whole-batch resends after a 5xx, 409, timeout or connection error",
            registry=registry,
        )
        self.item_retries = Counter(
            "trade_execution_item_retries",
            "Individual resends of items that failed for a transient reason",
            registry=registry,
        )
        self.items_per_second = Gauge(
            "trade_execution_submission_items_per_second",
            "Throughput of the last bulk submission",
            registry=registry,
        )
        self.success_rate = Gauge(
            "trade_execution_submission_success_ratio",
            "Share of executions accepted in the last bulk submission",
            registry=registry,
        )

    def batch(self, size: int, seconds: float, outcome: str, retries: int) -> None:
        if not self.enabled:
            return
        self.batch_size.observe(size)
        self.batch_duration.observe(seconds)
        self.batches.labels(outcome).inc()
        if retries:
            self.batch_retries.inc(retries)

    def item_retry(self) -> None:
        if self.enabled:
            self.item_retries.inc()

    def submission(self, succeeded: int, failed: int, exhausted: int, seconds: float) -> None:
        if not self.enabled:
            return
        total = succeeded + failed + exhausted
        for result, n in (("success", succeeded), ("failed", failed), ("exhausted", exhausted)):
            if n:
                self.items.labels(result).inc(n)
        if total:
            self.success_rate.set(succeeded / total)
            self.items_per_second.set(total / seconds if seconds > 0 else 0.0)
