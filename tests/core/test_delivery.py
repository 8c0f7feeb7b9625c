"""The durable-delivery queue (tranche.core.delivery) on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import CursorResult

from tranche.core.db import Database
from tranche.core.delivery import DeliveryQueue, QueueStats, next_due
from tranche.core.resilience import Backoff
from tranche.core.settings import PoolSettings
from tranche.core.sqltypes import UtcDateTime

POOL = PoolSettings(pool_size=2, max_overflow=0, pool_timeout=30, pool_recycle=-1)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

metadata = sa.MetaData()
jobs = sa.Table(
    "delivery_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("locked_until", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.String(20), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
QUEUE = DeliveryQueue(jobs, done="DONE", dead="DEAD", lease="locked_until", max_error=20)


@pytest.fixture
async def db(any_database_url: str) -> AsyncIterator[Database]:
    database = Database.open("delivery", any_database_url, POOL)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.close()


async def add(db: Database, *rows: dict[str, object]) -> list[int]:
    ids = []
    async with db.transaction() as s:
        for row in rows:
            values = {
                "kind": "a",
                "status": "PENDING",
                "attempts": 0,
                "next_attempt_at": NOW,
                "created_at": NOW - timedelta(minutes=1),
                **row,
            }
            result = await s.execute(jobs.insert().values(values))
            key = cast(CursorResult[Any], result).inserted_primary_key
            assert key is not None
            ids.append(int(key[0]))
    return ids


async def claim(db: Database, now: datetime = NOW, **kw: object) -> list[int]:
    async with db.transaction() as s:
        rows = await QUEUE.claim_leased(s, now, 10, 60, **kw)  # type: ignore[arg-type]
    return [int(r["id"]) for r in rows]


async def test_only_due_unleased_pending_rows_are_claimed_in_order_and_leased(
    db: Database,
) -> None:
    due = await add(db, {}, {})
    later, _, leased = await add(
        db,
        {"next_attempt_at": NOW + timedelta(seconds=1)},  # not due yet
        {"status": "DONE"},
        {"locked_until": NOW + timedelta(seconds=5)},  # someone else's lease
    )
    expired = await add(db, {"locked_until": NOW})  # a lease that ran out
    assert await claim(db) == due + expired
    assert await claim(db) == []  # leased to the first claimer now
    # A minute on: the first claim's leases ran out, and so did the other one.
    assert await claim(db, NOW + timedelta(seconds=61)) == sorted([*due, later, leased, *expired])


async def test_released_rows_are_due_again_and_extra_conditions_narrow_the_claim(
    db: Database,
) -> None:
    a, b = await add(db, {"kind": "a"}, {"kind": "b"})
    assert await claim(db, where=jobs.c.kind == "b") == [b]
    async with db.transaction() as s:
        await QUEUE.release(s, [b])
    assert await claim(db) == [a, b]


async def test_a_fate_is_recorded_clipped_and_only_over_a_pending_row(db: Database) -> None:
    live, superseded = await add(db, {}, {"status": "SUPERSEDED"})
    async with db.transaction() as s:
        changed = await QUEUE.record(
            s, live, {"attempts": 1, "last_error": "x" * 50}, only_pending=True
        )
        untouched = await QUEUE.record(s, superseded, {"status": "DONE"}, only_pending=True)
    assert (changed, untouched) == (1, 0)
    async with db.sessions() as s:
        rows = {r.id: r for r in (await s.execute(sa.select(jobs))).all()}
    assert rows[live].attempts == 1 and rows[live].last_error == "x" * 20
    assert rows[superseded].status == "SUPERSEDED"


async def test_many_fates_in_one_statement(db: Database) -> None:
    a, b = await add(db, {}, {})
    later = NOW + timedelta(seconds=30)
    async with db.transaction() as s:
        await QUEUE.record_many(
            s,
            "DEAD",
            [
                {"id": a, "attempts": 3, "last_error": "gone", "next_attempt_at": NOW},
                {"id": b, "attempts": 2, "last_error": "y" * 40, "next_attempt_at": later},
            ],
        )
    async with db.sessions() as s:
        rows = {r.id: r for r in (await s.execute(sa.select(jobs))).all()}
    assert [(rows[i].status, rows[i].attempts) for i in (a, b)] == [("DEAD", 3), ("DEAD", 2)]
    assert rows[b].last_error == "y" * 20 and rows[b].next_attempt_at == later


async def test_stats_count_pending_dead_and_the_oldest_age_per_group(db: Database) -> None:
    await add(
        db,
        {"kind": "a", "created_at": NOW - timedelta(seconds=90)},
        {"kind": "a"},
        {"kind": "a", "status": "DEAD"},
        {"kind": "b", "status": "DEAD"},
        {"kind": "c", "status": "DONE"},
    )
    async with db.sessions() as s:
        by_kind = await QUEUE.stats(s, NOW, by=jobs.c.kind)
        overall = await QUEUE.stats(s, NOW)
    assert by_kind == {"a": QueueStats(2, 90.0, 1), "b": QueueStats(0, 0.0, 1)}
    assert overall == {None: QueueStats(2, 90.0, 2)}


@given(attempts=st.integers(1, 10), permanent=st.booleans())
def test_next_due_follows_the_backoff_until_the_attempts_run_out(
    attempts: int, permanent: bool
) -> None:
    backoff = Backoff(max_attempts=5, initial_s=1, multiplier=2, max_s=30)
    due = next_due(backoff, attempts, NOW, permanent=permanent)
    if permanent or attempts >= 5:
        assert due is None
    else:
        assert due == NOW + timedelta(seconds=backoff.delay_after(attempts))
