"""A broker outage delays events and never loses them, nor fails the writer's commit."""

from __future__ import annotations

from collections import Counter

import pytest
from prometheus_client import CollectorRegistry

from tests.core.outbox.factories import (
    header,
    metric,
    rows_by_status,
    running_relay,
)
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume, eventually
from tranche.core.broker import EmbeddedBroker
from tranche.core.db import Database
from tranche.core.outbox import BrokerUnavailableError, OutboxEvent, enqueue_many
from tranche.core.resilience import BreakerState


async def test_broker_down_keeps_1000_events_pending_then_delivers_each_once(
    pg_db: Database, private_broker: EmbeddedBroker
) -> None:
    private_broker.start()
    await private_broker.wait_ready()
    bootstrap = private_broker.bootstrap_servers
    topic = unique_topic("outage")
    registry = CollectorRegistry()
    async with running_relay(
        pg_db, bootstrap, registry, kafka_overrides={"request_timeout_ms": 1000}
    ) as relay:
        assert (await relay.health())["circuit"] == "closed"
        private_broker.stop(timeout_s=0.5)  # Tansu can take 5 s to honour SIGTERM

        ids: list[str] = []
        for chunk in range(10):  # every commit succeeds while the broker is down
            async with pg_db.transaction() as s:
                ids += await enqueue_many(
                    s,
                    [
                        OutboxEvent(topic, f"k{chunk}-{i}", {"n": chunk * 100 + i})
                        for i in range(100)
                    ],
                )

        await eventually(lambda: relay.circuit is BreakerState.OPEN, 60, "the circuit to open")
        assert metric(registry, "outbox_circuit_state") == 2
        with pytest.raises(BrokerUnavailableError, match="circuit open"):
            await relay.health()
        assert await rows_by_status(pg_db, topic) == {"PENDING": 1000}
        assert metric(registry, "outbox_dead_total", topic=topic) == 0

        private_broker.start()
        await private_broker.wait_ready()
        assert await relay.wait_sent(ids, timeout_s=60) == set(ids)
        assert relay.circuit is BreakerState.CLOSED
        assert metric(registry, "outbox_circuit_state") == 0

    records = await consume(bootstrap, topic, expected=1000)
    seen = Counter((header(r, "event-id") or b"").decode() for r in records)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
    assert await rows_by_status(pg_db, topic) == {"SENT": 1000}
    assert metric(registry, "outbox_published_total", topic=topic) == 1000


async def test_a_relay_started_while_the_broker_is_down_opens_the_circuit_and_recovers(
    pg_db: Database, private_broker: EmbeddedBroker
) -> None:
    topic = unique_topic("coldstart")
    async with pg_db.transaction() as s:
        ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(20)])
    async with running_relay(pg_db, private_broker.bootstrap_servers) as relay:
        await eventually(lambda: relay.circuit is BreakerState.OPEN, 30, "the circuit to open")
        with pytest.raises(BrokerUnavailableError):
            await relay.health()
        private_broker.start()
        await private_broker.wait_ready()
        assert await relay.wait_sent(ids, timeout_s=30) == set(ids)
    assert await rows_by_status(pg_db, topic) == {"SENT": 20}
