"""Several relays on one database (replicas): SKIP LOCKED shares the work, nothing is sent twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
from prometheus_client import CollectorRegistry

from tests.core.outbox.factories import (
    header,
    metric,
    outbox_database,
    rows_by_status,
    running_relay,
)
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue_many


@pytest.fixture
async def mariadb_db(mariadb_url: str) -> AsyncIterator[Database]:
    async with outbox_database(mariadb_url, "maria") as db:
        yield db


async def _two_relays(db_url: str, writer: Database, bootstrap: str, events: int) -> None:
    topic = unique_topic("replicas")
    hot = [f"hot-{k}" for k in range(4)]
    registries = [CollectorRegistry(), CollectorRegistry()]
    # Each replica has its own engine and pool, as two processes would.
    async with (
        outbox_database(db_url, "replica-a", create=False) as db_a,
        outbox_database(db_url, "replica-b", create=False) as db_b,
        running_relay(db_a, bootstrap, registries[0], batch_size=200) as relay_a,
        running_relay(db_b, bootstrap, registries[1], batch_size=200),
    ):
        ids: list[str] = []
        chunk = 500
        for start in range(0, events, chunk):
            async with writer.transaction() as s:
                ids += await enqueue_many(
                    s,
                    [
                        # Every third event on a hot key, to check order across replicas.
                        OutboxEvent(topic, hot[n % 4] if n % 3 == 0 else f"k{n}", {"n": n})
                        for n in range(start, start + chunk)
                    ],
                )
        assert await relay_a.wait_sent(ids, timeout_s=90) == set(ids)

    records = await consume(bootstrap, topic, expected=events, timeout_s=30)
    copies = Counter((header(r, "event-id") or b"").decode() for r in records)
    assert set(copies) == set(ids)
    assert max(copies.values()) == 1, "an event was published twice"
    published = [metric(r, "outbox_published_total", topic=topic) for r in registries]
    assert sum(published) == events, published
    for key in hot:
        numbers = [orjson.loads(r.value)["n"] for r in records if r.key == key.encode()]
        assert numbers == sorted(numbers)
    assert await rows_by_status(writer, topic) == {"SENT": events}


async def test_two_relays_on_postgresql_publish_each_of_5000_events_once(
    pg_db: Database, postgres_url: str, kafka_bootstrap: str
) -> None:
    await _two_relays(postgres_url, pg_db, kafka_bootstrap, 5000)


async def test_two_relays_on_mariadb_publish_each_event_once(
    mariadb_db: Database, mariadb_url: str, kafka_bootstrap: str
) -> None:
    await _two_relays(mariadb_url, mariadb_db, kafka_bootstrap, 1000)
