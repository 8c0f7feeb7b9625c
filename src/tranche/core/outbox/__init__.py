"""Transactional outbox: events written with the business rows, relayed to Kafka.

``enqueue``/``enqueue_many`` write events in the caller's transaction; the
:class:`Relay` (started in the app's lifespan) publishes them with retry, a
circuit breaker and a dead-letter topic. See docs/outbox.md.
"""

from tranche.core.outbox.admin import OutboxStatusReport, TopicStatus, outbox_status, replay_dead
from tranche.core.outbox.backlog import OutboxBacklog
from tranche.core.outbox.dispatch import Hook, Render, SentEvent
from tranche.core.outbox.enqueue import EVENT_ID_HEADER, OutboxEvent, enqueue, enqueue_many
from tranche.core.outbox.metrics import OutboxMetrics
from tranche.core.outbox.publisher import BrokerUnavailableError
from tranche.core.outbox.relay import Relay, utc_now
from tranche.core.outbox.settings import OutboxSettings
from tranche.core.outbox.table import (
    OutboxStatus,
    add_outbox_table,
    drop_outbox_table,
    outbox_metadata,
    outbox_table,
)

__all__ = [
    "EVENT_ID_HEADER",
    "BrokerUnavailableError",
    "Hook",
    "OutboxBacklog",
    "OutboxEvent",
    "OutboxMetrics",
    "OutboxSettings",
    "OutboxStatus",
    "OutboxStatusReport",
    "Relay",
    "Render",
    "SentEvent",
    "TopicStatus",
    "add_outbox_table",
    "drop_outbox_table",
    "enqueue",
    "enqueue_many",
    "outbox_metadata",
    "outbox_status",
    "outbox_table",
    "replay_dead",
    "utc_now",
]
