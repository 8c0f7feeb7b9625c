"""Prometheus metrics of the execution service (seed task 6).

Names follow Prometheus conventions (``_seconds``, ``_total`` added by the client);
docs/execution-service.md lists them with the dashboards' queries. Pool gauges
(``db_pool_in_use``, ``db_pool_size``…) come from :class:`tranche.core.db.PoolCollector`
and the outbox's (``outbox_*``) from the relay.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ExecutionMetrics"]

_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000)
_TIME_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ExecutionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batch_duration = Histogram(
            "execution_batch_duration_seconds",
            "POST /executions/batch from validation to response, by outcome",
            ["status"],
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "execution_batch_size",
            "Executions per batch request",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.items = Counter(
            "execution_batch_items",
            "Batch items by result (succeeded, failed_validation, failed_database)",
            ["result"],
            registry=registry,
        )
        self.created = Counter(
            "execution_created", "Executions created, by endpoint", ["endpoint"], registry=registry
        )
        self.chunk_duration = Histogram(
            "execution_bulk_insert_seconds",
            "One chunk's insert transaction (rows + outbox events), by method",
            ["method"],
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        self.chunk_rows = Histogram(
            "execution_bulk_insert_rows",
            "Rows per insert chunk",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.fallbacks = Counter(
            "execution_bulk_insert_fallbacks",
            "Chunks whose bulk insert failed and were retried row by row",
            registry=registry,
        )
        self.chunk_size = Gauge(
            "execution_bulk_insert_chunk_size",
            "Chunk size the sizer will use next",
            registry=registry,
        )
        self.inserts_waiting = Gauge(
            "execution_bulk_insert_waiting",
            "Chunks waiting for a free bulk-insert slot",
            registry=registry,
        )
        self.backlog_wait = Histogram(
            "execution_outbox_backlog_wait_seconds",
            "Time a chunk waited for the relay to bring the outbox backlog under the limit",
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        self.publish_wait = Histogram(
            "execution_publish_wait_seconds",
            "Time a create waited for the broker's acknowledgement",
            buckets=_TIME_BUCKETS,
            registry=registry,
        )
        self.publish_unconfirmed = Counter(
            "execution_publish_unconfirmed",
            "Executions answered before the broker acknowledged them (sentTimestamp null)",
            registry=registry,
        )
        self.fills = Counter(
            "execution_fills", "PUT fills by outcome", ["outcome"], registry=registry
        )
        self.callbacks = Counter(
            "execution_trade_callbacks",
            "Trade-service fill deliveries by outcome (delivered, retry, failed, superseded)",
            ["outcome"],
            registry=registry,
        )
        self.callbacks_pending = Gauge(
            "execution_trade_callbacks_pending",
            "Fills not yet delivered to the trade service",
            registry=registry,
        )
        self.callbacks_oldest = Gauge(
            "execution_trade_callbacks_oldest_pending_seconds",
            "Age of the oldest undelivered fill",
            registry=registry,
        )
        self.idempotency = Counter(
            "execution_idempotency",
            "Requests with an Idempotency-Key by outcome (new, replayed, resumed, conflict, "
            "reused)",
            ["outcome"],
            registry=registry,
        )
