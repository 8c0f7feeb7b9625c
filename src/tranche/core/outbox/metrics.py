"""Prometheus metrics of the outbox relay.

Relays that share a registry share these objects (one set per registry), so a
process with two relays on one registry does not fail on duplicate names.
The pending and oldest-age gauges describe the shared table, so every replica
reports the same values: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["OutboxMetrics"]

_by_registry: WeakKeyDictionary[CollectorRegistry, OutboxMetrics] = WeakKeyDictionary()


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = Counter(
            "outbox_published", "Events the broker acknowledged.", ["topic"], registry=registry
        )
        self.failed = Counter(
            "outbox_failed",
            "Publish attempts that failed, per event.",
            ["topic"],
            registry=registry,
        )
        self.retried = Counter(
            "outbox_retried",
            "Events put back for another attempt after a failure.",
            ["topic"],
            registry=registry,
        )
        self.dead = Counter(
            "outbox_dead",
            "Events marked DEAD (and sent to '<topic>.dlq' when enabled).",
            ["topic"],
            registry=registry,
        )
        self.hook_failed = Counter(
            "outbox_hook_failed",
            "After-send hooks that raised (the events were still marked SENT).",
            ["topic"],
            registry=registry,
        )
        self.pending = Gauge(
            "outbox_pending", "PENDING rows in the outbox table.", ["topic"], registry=registry
        )
        self.dead_rows = Gauge(
            "outbox_dead_rows",
            "DEAD rows in the outbox table (alert on growth; replay with 'tranche outbox replay').",
            ["topic"],
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest PENDING row.",
            ["topic"],
            registry=registry,
        )
        self.circuit_state = Gauge(
            "outbox_circuit_state",
            "Broker circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> OutboxMetrics:
        found = _by_registry.get(registry)
        if found is None:
            found = _by_registry[registry] = cls(registry)
        return found

    def set_table_stats(
        self, pending: dict[str, tuple[int, float]], dead: dict[str, int], topics: set[str]
    ) -> None:
        """Pending count and oldest age per topic; topics that emptied drop to zero."""
        for topic in topics | set(pending) | set(dead):
            count, age = pending.get(topic, (0, 0.0))
            self.pending.labels(topic).set(count)
            self.oldest_pending_age.labels(topic).set(age)
            self.dead_rows.labels(topic).set(dead.get(topic, 0))
