"""The direct hand-off: a commit's events go to the producer at once; the row is the backstop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.core.outbox.factories import header, metric, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue, enqueue_many, outbox_table, store, utc_now

ROOT = Path(__file__).resolve().parents[3]
SLOW_POLL = 60_000  # the relay's rounds do not come round again within a test


async def test_a_commit_is_sent_at_once_and_no_replica_sends_it_again(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("handoff")
    registry = CollectorRegistry()
    async with running_relay(pg_db, kafka_bootstrap, registry, poll_interval_ms=SLOW_POLL) as relay:
        async with pg_db.transaction() as s:
            ids = await enqueue_many(s, [OutboxEvent(topic, f"k{i}", {"i": i}) for i in range(200)])
        sent = await relay.wait_sent_at(ids, timeout_s=30)
        # Sent by this process (an instant is known), all in the one hand-over.
        assert set(sent) == set(ids)
        assert len(set(sent.values())) == 1 and None not in sent.values()
        assert metric(registry, "outbox_published_total", topic=topic) == 200
    assert await rows_by_status(pg_db, topic) == {"SENT": 200}

    # Another replica relaying the same table finds nothing left to send.
    async with running_relay(pg_db, kafka_bootstrap) as replica:
        assert await replica.wait_sent(ids, timeout_s=5) == set(ids)
    records = await consume(kafka_bootstrap, topic, expected=200)
    copies = Counter((header(r, "event-id") or b"").decode() for r in records)
    assert copies == dict.fromkeys(ids, 1)


async def test_a_process_killed_between_commit_and_ack_leaves_the_event_to_the_relay(
    pg_db: Database, postgres_url: str, kafka_bootstrap: str
) -> None:
    topic = unique_topic("handoff-crash")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.core.outbox.crashing_handoff",
        postgres_url,
        kafka_bootstrap,
        topic,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    [event_id] = [
        line.removeprefix("event-id=")
        for line in stdout.decode().splitlines()
        if line.startswith("event-id=")
    ]
    assert await rows_by_status(pg_db, topic) == {"PENDING": 1}  # committed, never acked

    async with running_relay(pg_db, kafka_bootstrap) as relay:
        assert await relay.wait_sent([event_id], timeout_s=30) == {event_id}
    [record] = await consume(kafka_bootstrap, topic, expected=1)
    assert header(record, "event-id") == event_id.encode()
    assert await rows_by_status(pg_db, topic) == {"SENT": 1}


async def test_a_key_with_an_earlier_pending_row_is_left_to_the_relay(pg_db: Database) -> None:
    """Order per key: a hand-off never overtakes an earlier event of its key."""
    topic = unique_topic("handoff-order")
    async with pg_db.transaction() as s:
        earlier = await enqueue(s, topic, "k1", {"n": 0})
        # Waiting for its retry: not due, still PENDING.
        await s.execute(
            outbox_table.update()
            .where(outbox_table.c.event_id == earlier)
            .values(available_at=utc_now() + timedelta(minutes=5))
        )
    async with pg_db.transaction() as s:
        later = await enqueue_many(
            s, [OutboxEvent(topic, "k1", {"n": 1}), OutboxEvent(topic, "k2", {"n": 2})]
        )
    rows = await _rows(pg_db, later)
    for premark in (True, False):  # PostgreSQL's one statement, and MariaDB's way
        async with pg_db.sessions() as s:
            sendable, blocked = await store.claim_events(s, rows, utc_now(), premark)
            await s.rollback()
        assert [r.event_id for r in sendable] == [later[1]]
        assert [r.event_id for r in blocked] == [later[0]]
    assert await rows_by_status(pg_db, topic) == {"PENDING": 3}


async def test_rows_another_relay_already_sent_are_not_claimed_again(pg_db: Database) -> None:
    topic = unique_topic("handoff-taken")
    async with pg_db.transaction() as s:
        ids = await enqueue_many(s, [OutboxEvent(topic, f"k{i}", {"i": i}) for i in range(3)])
    rows = await _rows(pg_db, ids)
    async with pg_db.transaction() as s:
        await store.claim_events(s, rows[:1], utc_now(), premark=True)  # sent and committed
    async with pg_db.sessions() as s:
        sendable, blocked = await store.claim_events(s, rows, utc_now(), premark=True)
        await s.rollback()
    assert sorted(r.event_id for r in sendable) == sorted(ids[1:])
    assert blocked == []


async def _rows(db: Database, event_ids: list[str]) -> list[store.Row]:
    """The rows as the hand-off knows them (seq unknown until the claim)."""
    async with db.sessions() as s:
        found = {r.event_id: r for r in await store.claim(s, 100, utc_now(), lock=False)}
    return [found[e]._replace(seq=0) for e in event_ids]
