"""Gauges of the table, purge of old SENT rows, and the health check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from tests.core.outbox.factories import metric, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import eventually
from tranche.core.broker import EmbeddedBroker
from tranche.core.db import Database
from tranche.core.outbox import (
    BrokerUnavailableError,
    OutboxEvent,
    enqueue_many,
    outbox_table,
    utc_now,
)


async def test_gauges_show_pending_count_age_and_dead_rows(
    pg_db: Database, private_broker: EmbeddedBroker
) -> None:
    """The broker is down, so rows stay PENDING and the gauges describe the backlog."""
    topic = unique_topic("gauges")
    async with pg_db.transaction() as s:
        ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(7)])
        await s.execute(
            update(outbox_table).where(outbox_table.c.event_id == ids[0]).values(status="DEAD")
        )
    registry = CollectorRegistry()
    later = utc_now() + timedelta(minutes=10)
    async with running_relay(
        pg_db, private_broker.bootstrap_servers, registry, clock=lambda: later
    ):
        await eventually(
            lambda: metric(registry, "outbox_pending", topic=topic) == 6, what="pending gauge"
        )
        assert metric(registry, "outbox_dead_rows", topic=topic) == 1
        age = metric(registry, "outbox_oldest_pending_age_seconds", topic=topic)
        assert 590 < age < 700


async def test_sent_rows_older_than_the_retention_are_purged(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("purge")
    async with running_relay(pg_db, kafka_bootstrap) as relay:
        async with pg_db.transaction() as s:
            ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(5)])
        assert await relay.wait_sent(ids, timeout_s=20) == set(ids)
    async with pg_db.transaction() as s:
        await s.execute(
            update(outbox_table)
            .where(outbox_table.c.event_id.in_(ids[:3]))
            .values(sent_at=utc_now() - timedelta(hours=25))
        )
    async with running_relay(pg_db, kafka_bootstrap, sent_retention_hours=24):
        await eventually(lambda: rows_by_status(pg_db, topic), until={"SENT": 2}, what="purge")


async def test_health_reports_the_broker_and_fails_when_it_is_gone(
    pg_db: Database, private_broker: EmbeddedBroker
) -> None:
    private_broker.start()
    await private_broker.wait_ready()
    async with running_relay(pg_db, private_broker.bootstrap_servers) as relay:
        details = await relay.health()
        assert details["circuit"] == "closed"
        assert details["bootstrap"] == private_broker.bootstrap_servers
        private_broker.stop(timeout_s=0.5)
        with pytest.raises(BrokerUnavailableError, match="broker unreachable"):
            await relay.health()
