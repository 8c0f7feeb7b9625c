"""Enqueue → relay → broker on every database: wake on commit, headers, order, hooks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.outbox.factories import header, metric, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume, eventually
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, SentEvent, enqueue, enqueue_many

SLOW_POLL = 60_000  # only a commit wake-up can publish within the test


async def test_committed_events_reach_the_broker_with_their_event_id(
    any_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("basic")
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.lower())

    engine = any_db.engine.sync_engine
    sa.event.listen(engine, "after_cursor_execute", seen)
    async with running_relay(any_db, kafka_bootstrap, poll_interval_ms=SLOW_POLL) as relay:
        # The first round has claimed from an empty table: what is committed from now on
        # can only be published by the commit's wake-up (the poll is a minute away).
        await eventually(lambda: any("outbox" in s for s in statements), what="the first claim")
        sa.event.remove(engine, "after_cursor_execute", seen)
        async with any_db.transaction() as s:
            first = await enqueue(
                s, topic, "42", {"id": 42, "price": Decimal("101.25")}, {"source": "test"}
            )
            rest = await enqueue_many(
                s, [OutboxEvent(topic, "43", "plain text"), OutboxEvent(topic, None, b"\x00\xff")]
            )
        ids = [first, *rest]
        assert await relay.wait_sent(ids, timeout_s=20) == set(ids)

    records = await consume(kafka_bootstrap, topic, expected=3)
    by_id = {header(r, "event-id"): r for r in records}
    assert set(by_id) == {i.encode() for i in ids}
    one = by_id[first.encode()]
    assert one.key == b"42"
    assert orjson.loads(one.value) == {"id": 42, "price": 101.25}
    assert b'"price":101.25' in one.value  # Decimal written as an exact JSON number
    assert header(one, "source") == b"test"
    assert by_id[rest[0].encode()].value == b"plain text"
    assert by_id[rest[1].encode()].key is None
    assert by_id[rest[1].encode()].value == b"\x00\xff"
    assert await rows_by_status(any_db, topic) == {"SENT": 3}


async def test_a_rolled_back_transaction_publishes_nothing(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("rollback")
    async with running_relay(pg_db, kafka_bootstrap) as relay:
        lost: list[str] = []

        async def failing_request() -> None:
            async with pg_db.transaction() as s:
                lost.extend(
                    await enqueue_many(
                        s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(100)]
                    )
                )
                raise RuntimeError("business rule failed")

        with pytest.raises(RuntimeError):
            await failing_request()
        async with pg_db.transaction() as s:
            kept = await enqueue(s, topic, "k", {"kept": True})
        assert await relay.wait_sent([kept], timeout_s=20) == {kept}
        assert await relay.wait_sent(lost[:3], timeout_s=0.3) == set()
    assert await rows_by_status(pg_db, topic) == {"SENT": 1}
    records = await consume(kafka_bootstrap, topic, expected=1, timeout_s=3)
    assert [header(r, "event-id") for r in records] == [kept.encode()]


async def test_events_of_one_key_arrive_in_commit_order(
    pg_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("order")
    keys = [f"acct-{k}" for k in range(5)]
    async with running_relay(pg_db, kafka_bootstrap, batch_size=37) as relay:
        ids: list[str] = []
        for chunk in range(10):
            async with pg_db.transaction() as s:
                ids += await enqueue_many(
                    s,
                    [OutboxEvent(topic, keys[n % 5], {"n": chunk * 40 + n}) for n in range(40)],
                )
        assert await relay.wait_sent(ids, timeout_s=30) == set(ids)
    records = await consume(kafka_bootstrap, topic, expected=400)
    seen: dict[bytes, list[int]] = {}
    for r in records:
        assert r.key is not None
        seen.setdefault(r.key, []).append(orjson.loads(r.value)["n"])
    assert len(seen) == 5
    for numbers in seen.values():
        assert numbers == sorted(numbers) and len(numbers) == 80


async def test_after_send_hook_runs_in_the_marking_transaction(
    any_db: Database, kafka_bootstrap: str, captured_logs: list[dict[str, Any]]
) -> None:
    topic, other = unique_topic("hook"), unique_topic("nohook")
    side = sa.Table(
        f"sent_log_{topic.split('.')[1]}",
        sa.MetaData(),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("part", sa.Integer()),
        sa.Column("off", sa.BigInteger()),
    )
    async with any_db.engine.begin() as conn:
        await conn.run_sync(side.create)
    calls: list[list[SentEvent]] = []

    async def hook(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        calls.append(list(events))
        await session.execute(
            sa.insert(side),
            [{"event_id": e.event_id, "part": e.partition, "off": e.offset} for e in events],
        )

    async def broken(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        await session.execute(sa.text("SELECT * FROM no_such_table"))

    registry = CollectorRegistry()
    # One worker, so one round sends the five events: two woken at once may split them
    # (SKIP LOCKED), and each round's failing hook would count once.
    async with running_relay(any_db, kafka_bootstrap, registry, relay_concurrency=1) as relay:
        relay.on_sent(topic, hook)
        relay.on_sent(topic, broken)
        async with any_db.transaction() as s:
            ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(5)])
            other_id = await enqueue(s, other, "x", {"x": 1})
        assert await relay.wait_sent([*ids, other_id], timeout_s=20) == {*ids, other_id}

    assert [e.event_id for batch in calls for e in batch] == ids
    assert all(e.topic == topic and e.headers["event-id"] == e.event_id.encode() for e in calls[0])
    async with any_db.sessions() as s:
        logged = {
            row.event_id: (row.part, row.off) for row in (await s.execute(sa.select(side))).all()
        }
    assert set(logged) == set(ids)
    records = await consume(kafka_bootstrap, topic, expected=5)
    assert {
        (header(r, "event-id") or b"").decode(): (r.partition, r.offset) for r in records
    } == logged
    # The failing hook rolled back its own work only: every row is SENT, none sent twice.
    assert await rows_by_status(any_db, topic) == {"SENT": 5}
    assert metric(registry, "outbox_hook_failed_total", topic=topic) == 1
    assert [e["topic"] for e in captured_logs if e["event"] == "outbox_hook_failed"] == [topic]


async def test_a_render_stamps_the_hand_over_instant_the_hooks_see(
    any_db: Database, kafka_bootstrap: str, captured_logs: list[dict[str, Any]]
) -> None:
    topic, other = unique_topic("render"), unique_topic("plain")
    seen: list[SentEvent] = []

    def stamp(value: bytes, at: datetime) -> bytes:
        if b'"boom"' in value:
            raise ValueError("cannot render")
        return value.replace(b'"at":null', b'"at":"' + at.isoformat().encode() + b'"')

    async def hook(_session: AsyncSession, events: Sequence[SentEvent]) -> None:
        seen.extend(events)

    async with running_relay(any_db, kafka_bootstrap, CollectorRegistry()) as relay:
        relay.render(topic, stamp)
        relay.on_sent(topic, hook)
        async with any_db.transaction() as s:
            ids = await enqueue_many(
                s, [OutboxEvent(topic, str(i), {"i": i, "at": None}) for i in range(3)]
            )
            bad = await enqueue(s, topic, "bad", {"boom": 1, "at": None})
            plain = await enqueue(s, other, "p", {"at": None})
        assert await relay.wait_sent([*ids, plain], timeout_s=20) == {*ids, plain}
    records = await consume(kafka_bootstrap, topic, expected=3)
    values = {(header(r, "event-id") or b"").decode(): orjson.loads(r.value) for r in records}
    assert set(values) == set(ids)
    # What the consumer reads is the instant the hooks were given, not the commit's.
    by_id = {e.event_id: e for e in seen}
    for event_id, value in values.items():
        assert datetime.fromisoformat(value["at"]) == by_id[event_id].sent_at
        assert orjson.loads(by_id[event_id].value) == value
    # Other topics go out as stored; an event its render refuses is dead, not stuck.
    (plain_record,) = await consume(kafka_bootstrap, other, expected=1)
    assert orjson.loads(plain_record.value) == {"at": None}
    assert await rows_by_status(any_db, topic) == {"SENT": 3, "DEAD": 1}
    assert bad not in by_id
    assert any(e["event"] == "outbox_render_failed" for e in captured_logs)
