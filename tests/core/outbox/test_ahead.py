"""Hooks registered ``ahead`` run beside the acks and keep only delivered events' writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.outbox.factories import metric, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, SentEvent, enqueue_many
from tranche.core.outbox.ahead import NOT_YET

pytestmark = pytest.mark.parametrize("any_database_url", ["postgres", "mariadb"], indirect=True)


async def _stamped(db: Database, topic: str) -> dict[str, str]:
    """The side table an ahead hook writes: event id -> hand-over instant stored (ISO)."""
    side = _side(topic)
    async with db.sessions() as s:
        return {r.event_id: r.at for r in (await s.execute(sa.select(side))).all()}


def _side(topic: str) -> sa.Table:
    return sa.Table(
        f"stamped_{topic.split('.')[1]}",
        sa.MetaData(),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("at", sa.String(40)),
    )


async def _create_side(db: Database, topic: str) -> sa.Table:
    side = _side(topic)
    async with db.engine.begin() as conn:
        await conn.run_sync(side.create)
    return side


def _stamping_hook(side: sa.Table, calls: list[list[SentEvent]], fail_first: bool = False) -> Any:
    async def hook(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        calls.append(list(events))
        await session.execute(
            sa.insert(side), [{"event_id": e.event_id, "at": e.sent_at.isoformat()} for e in events]
        )
        if fail_first and len(calls) == 1:
            raise RuntimeError("first call fails")

    return hook


async def test_an_ahead_hook_stores_what_the_sent_rows_say_once(
    any_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("ahead")
    side = await _create_side(any_db, topic)
    calls: list[list[SentEvent]] = []
    registry = CollectorRegistry()
    async with running_relay(any_db, kafka_bootstrap, registry, relay_concurrency=1) as relay:
        relay.on_sent(topic, _stamping_hook(side, calls), ahead=True)
        async with any_db.transaction() as s:
            ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(5)])
        assert await relay.wait_sent(ids, timeout_s=20) == set(ids)
    # Written once, in the transaction that marked the rows SENT, with the hand-over
    # instant; given before the acks, so without partition or offset.
    given = [e for batch in calls for e in batch]
    assert sorted(e.event_id for e in given) == sorted(ids)
    assert await _stamped(any_db, topic) == {e.event_id: e.sent_at.isoformat() for e in given}
    assert {(e.partition, e.offset) for e in given} == {(NOT_YET, NOT_YET)}
    assert await rows_by_status(any_db, topic) == {"SENT": 5}
    assert metric(registry, "outbox_hook_failed_total", topic=topic) == 0


async def test_an_ahead_hook_keeps_nothing_for_an_event_the_broker_refused(
    any_db: Database, kafka_bootstrap: str
) -> None:
    topic = unique_topic("refused")
    side = await _create_side(any_db, topic)
    calls: list[list[SentEvent]] = []
    async with running_relay(
        any_db, kafka_bootstrap, relay_concurrency=1, max_message_bytes=2048
    ) as relay:
        relay.on_sent(topic, _stamping_hook(side, calls), ahead=True)
        async with any_db.transaction() as s:
            ok = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(3)])
            [big] = await enqueue_many(s, [OutboxEvent(topic, "big", {"pad": "x" * 4000})])
        assert await relay.wait_sent(ok, timeout_s=20) == set(ok)
    # Given all four before the acks, the hook's writes were undone and made again for
    # the three delivered: the dead event has nothing stored.
    assert set(await _stamped(any_db, topic)) == set(ok)
    assert await rows_by_status(any_db, topic) == {"SENT": 3, "DEAD": 1}
    assert [sorted(e.event_id for e in batch) for batch in calls] == [
        sorted([*ok, big]),
        sorted(ok),
    ]


async def test_an_ahead_hook_that_fails_runs_again_after_the_acks(
    any_db: Database, kafka_bootstrap: str, captured_logs: list[dict[str, Any]]
) -> None:
    topic = unique_topic("retried")
    side = await _create_side(any_db, topic)
    calls: list[list[SentEvent]] = []
    registry = CollectorRegistry()
    async with running_relay(any_db, kafka_bootstrap, registry, relay_concurrency=1) as relay:
        relay.on_sent(topic, _stamping_hook(side, calls, fail_first=True), ahead=True)
        async with any_db.transaction() as s:
            ids = await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(3)])
        assert await relay.wait_sent(ids, timeout_s=20) == set(ids)
    # The first call's insert was rolled back with it; the second, after the acks, stored
    # each once.
    assert len(calls) == 2
    assert await _stamped(any_db, topic) == {e.event_id: e.sent_at.isoformat() for e in calls[1]}
    assert all(e.offset >= 0 for e in calls[1])
    assert metric(registry, "outbox_hook_failed_total", topic=topic) == 0
    assert any(e["event"] == "outbox_hook_ahead_failed" for e in captured_logs)
