"""Long runs (``make soak``): the broker dies twice while two relays are mid-stream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.core.outbox.factories import metric, outbox_database, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tranche.core.broker import EmbeddedBroker
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.core.resilience import BreakerState


@pytest.mark.slow
async def test_broker_killed_mid_stream_twice_every_event_ends_sent(
    pg_db: Database,
    postgres_url: str,
    private_broker: EmbeddedBroker,
    captured_logs: list[dict[str, Any]],
) -> None:
    """20 000 events over ~7 s, two relays, the broker killed and restarted twice.

    Checked on the outbox side: every event ends SENT (the broker acknowledged it at
    least once), none DEAD, the circuits close again by themselves, no round crashed.
    The broker side cannot be checked across these restarts: Tansu's memory storage
    forgets topics on restart, and for a producer that still has the topic's metadata
    it acknowledges records it then drops (or answers UnknownError) — a property of
    the embedded test broker, not of a persistent Kafka. The relay re-creates its
    producer after every unreachable round to ask for metadata afresh.
    """
    private_broker.start()
    await private_broker.wait_ready()
    bootstrap = private_broker.bootstrap_servers
    topic = unique_topic("soak")
    registries = [CollectorRegistry(), CollectorRegistry()]
    quick: dict[str, Any] = {
        "kafka_overrides": {"request_timeout_ms": 1000},
        "breaker_reset_ms": 200,
        "max_attempts": 10,
    }
    async with (
        outbox_database(postgres_url, "soak-b", create=False) as db_b,
        running_relay(pg_db, bootstrap, registries[0], **quick) as relay_a,
        running_relay(db_b, bootstrap, registries[1], **quick) as relay_b,
    ):
        ids: list[str] = []

        async def write() -> None:
            for start in range(0, 20_000, 250):
                async with pg_db.transaction() as s:
                    ids.extend(
                        await enqueue_many(
                            s,
                            [
                                OutboxEvent(topic, f"k{n % 97}", {"n": n})
                                for n in range(start, start + 250)
                            ],
                        )
                    )
                await asyncio.sleep(0.08)  # keep writing through both outages

        writer = asyncio.create_task(write())
        for _ in range(2):
            await asyncio.sleep(1.5)
            private_broker.stop(timeout_s=0.2)
            await asyncio.sleep(1.5)
            private_broker.start()
            await private_broker.wait_ready()
        await writer
        assert await relay_a.wait_sent(ids, timeout_s=90) == set(ids)
        assert relay_a.circuit is BreakerState.CLOSED
        assert relay_b.circuit is BreakerState.CLOSED

    assert await rows_by_status(pg_db, topic) == {"SENT": 20_000}
    assert sum(metric(r, "outbox_published_total", topic=topic) for r in registries) >= 20_000
    assert sum(metric(r, "outbox_dead_total", topic=topic) for r in registries) == 0
    assert not [e for e in captured_logs if e["event"] == "outbox_round_failed"]
