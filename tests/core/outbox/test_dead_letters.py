"""Poison events end on '<topic>.dlq' with why they died, are marked DEAD, and can be replayed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from prometheus_client import CollectorRegistry
from sqlalchemy import update
from typer.testing import CliRunner

from tests.core.outbox.factories import (
    header,
    metric,
    rows_by_status,
    running_relay,
)
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume, eventually
from tranche.cli import app
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue, enqueue_many, outbox_table


async def test_too_large_event_is_dead_lettered_then_replayed_after_the_limit_is_raised(
    pg_db: Database, postgres_url: str, kafka_bootstrap: str
) -> None:
    topic = unique_topic("poison")
    big = {"blob": "x" * 5000}
    registry = CollectorRegistry()
    async with running_relay(pg_db, kafka_bootstrap, registry, max_message_bytes=2048) as relay:
        async with pg_db.transaction() as s:
            poison = await enqueue(s, topic, "p-1", big, {"trace": "abc"})
            fine = await enqueue(s, topic, "ok-1", {"small": True})
        assert await relay.wait_sent([fine], timeout_s=20) == {fine}

    letters = await consume(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert len(letters) == 1
    dlq = letters[0]
    assert dlq.key == b"p-1"
    assert header(dlq, "event-id") == poison.encode()
    assert header(dlq, "trace") == b"abc"  # the original headers travel with it
    assert header(dlq, "dlq-original-topic") == topic.encode()
    assert b"exceeds max_message_bytes=2048" in (header(dlq, "dlq-error") or b"")
    assert header(dlq, "dlq-attempts") == b"1"
    first = datetime.fromisoformat((header(dlq, "dlq-first-attempt-at") or b"").decode())
    last = datetime.fromisoformat((header(dlq, "dlq-last-attempt-at") or b"").decode())
    assert first <= last <= datetime.now(UTC)
    # The value cannot fit either; the outbox row keeps it for the replay.
    assert dlq.value == b""
    assert int(header(dlq, "dlq-value-omitted-bytes") or 0) > 5000
    assert await rows_by_status(pg_db, topic) == {"DEAD": 1, "SENT": 1}
    assert metric(registry, "outbox_dead_total", topic=topic) == 1
    assert metric(registry, "outbox_failed_total", topic=topic) == 1

    runner = CliRunner()
    shown = await asyncio.to_thread(
        runner.invoke, app, ["outbox", "status", "--url", postgres_url, "--json"]
    )
    assert shown.exit_code == 0, shown.output
    report = {t["topic"]: t for t in orjson.loads(shown.output)["topics"]}
    assert report[topic]["dead"] == 1 and report[topic]["sent"] == 1
    assert "exceeds max_message_bytes" in report[topic]["last_dead_error"]

    replayed = await asyncio.to_thread(
        runner.invoke, app, ["outbox", "replay", "--url", postgres_url, "--topic", topic]
    )
    assert replayed.exit_code == 0, replayed.output
    assert f"re-queued 1 dead event of topic {topic}" in replayed.output
    assert await rows_by_status(pg_db, topic) == {"PENDING": 1, "SENT": 1}

    async with running_relay(pg_db, kafka_bootstrap) as relay:  # the limit was raised
        assert await relay.wait_sent([poison], timeout_s=20) == {poison}
    records = await consume(kafka_bootstrap, topic, expected=2)
    delivered = next(r for r in records if header(r, "event-id") == poison.encode())
    assert orjson.loads(delivered.value) == big
    assert await rows_by_status(pg_db, topic) == {"SENT": 2}


async def test_unserialisable_value_commits_and_is_dead_lettered(
    any_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("unser")
    async with running_relay(any_db, kafka_bootstrap) as relay:
        async with any_db.transaction() as s:  # the business transaction still commits
            bad = await enqueue(s, topic, "k", {"tags": {"a", "b"}})
            good = await enqueue(s, topic, "k2", {"tags": ["a"]})
        assert await relay.wait_sent([good], timeout_s=20) == {good}
    letters = await consume(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert [header(r, "event-id") for r in letters] == [bad.encode()]
    assert (header(letters[0], "dlq-error") or b"").startswith(b"unserialisable value")
    assert header(letters[0], "dlq-attempts") == b"0"
    assert letters[0].value.startswith(b"{'tags': {")  # what was enqueued, for a human
    assert await rows_by_status(any_db, topic) == {"DEAD": 1, "SENT": 1}


async def test_exhausted_row_is_dead_lettered_with_its_last_error(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("exhausted")
    async with pg_db.transaction() as s:
        event_id = await enqueue(s, topic, "k", {"n": 1})
        # As left by a round that failed its third attempt but found the DLQ unreachable.
        await s.execute(
            update(outbox_table)
            .where(outbox_table.c.event_id == event_id)
            .values(attempts=3, last_error="NotEnoughReplicasError: 1 of 3 in sync")
        )
    async with running_relay(pg_db, kafka_bootstrap, max_attempts=3):
        await eventually(
            lambda: rows_by_status(pg_db, topic), what="the row to leave PENDING", until={"DEAD": 1}
        )
    letters = await consume(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert header(letters[0], "dlq-attempts") == b"3"
    assert header(letters[0], "dlq-error") == b"NotEnoughReplicasError: 1 of 3 in sync"
    assert await rows_by_status(pg_db, topic) == {"DEAD": 1}
    assert await consume(kafka_bootstrap, topic, expected=1, timeout_s=1) == []


async def test_with_the_dlq_disabled_a_poison_row_is_only_marked_dead(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("nodlq")
    async with running_relay(
        pg_db, kafka_bootstrap, dlq_enabled=False, max_message_bytes=1024
    ) as relay:
        async with pg_db.transaction() as s:
            await enqueue(s, topic, "k", "y" * 4000)
            ok = await enqueue(s, topic, "k2", "fine")
        assert await relay.wait_sent([ok], timeout_s=20) == {ok}
    assert await rows_by_status(pg_db, topic) == {"DEAD": 1, "SENT": 1}
    assert await consume(kafka_bootstrap, f"{topic}.dlq", expected=1, timeout_s=1) == []


async def test_a_row_waiting_for_its_retry_holds_back_later_events_of_its_key(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("backoff")
    now = datetime.now(UTC)
    async with pg_db.transaction() as s:
        first, second, other = await enqueue_many(
            s,
            [
                OutboxEvent(topic, "A", {"n": 1}),
                OutboxEvent(topic, "A", {"n": 2}),
                OutboxEvent(topic, "B", {"n": 3}),
            ],
        )
        # As after a failed first attempt: due again in a minute.
        await s.execute(
            update(outbox_table)
            .where(outbox_table.c.event_id == first)
            .values(attempts=1, available_at=now + timedelta(minutes=1), last_error="boom")
        )
    async with running_relay(pg_db, kafka_bootstrap) as relay:
        assert await relay.wait_sent([other], timeout_s=20) == {other}
        assert await relay.wait_sent([first, second], timeout_s=0.5) == set()
    later = now + timedelta(minutes=2)
    async with running_relay(pg_db, kafka_bootstrap, clock=lambda: later) as relay:
        assert await relay.wait_sent([first, second], timeout_s=20) == {first, second}
    records = await consume(kafka_bootstrap, topic, expected=3)
    assert [orjson.loads(r.value)["n"] for r in records if r.key == b"A"] == [1, 2]
