"""Backpressure from the outbox backlog (EXECUTION_BACKLOG_LIMIT), on real databases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tests.fixtures.servers import DatabaseFactory
from tests.fixtures.waiting import eventually
from tranche.core.db import Database
from tranche.core.migrations import upgrade
from tranche.core.outbox import OutboxBacklog, OutboxEvent, enqueue_many
from tranche.core.settings import PoolSettings

POOL = PoolSettings(pool_size=3, max_overflow=0, pool_timeout=30, pool_recycle=-1)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(
    request: pytest.FixtureRequest, sqlite_url: str, postgres_factory: DatabaseFactory
) -> AsyncIterator[Database]:
    url = sqlite_url if request.param == "sqlite" else await postgres_factory("backlog")
    await upgrade("execution", url)
    database = Database.open("backlog", url, POOL)
    try:
        yield database
    finally:
        await database.close()


async def _pending(db: Database, n: int) -> None:
    async with db.transaction() as s:
        await enqueue_many(s, [OutboxEvent("orders", str(i), b"{}") for i in range(n)])


async def _send_all(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(sa.text("UPDATE outbox SET status = 'SENT' WHERE status = 'PENDING'"))


async def test_no_wait_below_the_limit(db: Database) -> None:
    await _pending(db, 5)
    waits: list[float] = []
    backlog = OutboxBacklog(
        db, limit=10, max_wait_s=30, relaying=lambda: True, on_wait=waits.append
    )
    assert await backlog.wait() == 0.0
    assert waits == []


async def test_a_chunk_waits_until_the_relay_catches_up(db: Database) -> None:
    await _pending(db, 10)
    waits: list[float] = []
    polls: list[None] = []  # the backlog asks whether the relay runs on every poll

    def relaying() -> bool:
        polls.append(None)
        return True

    backlog = OutboxBacklog(
        db, limit=10, max_wait_s=30, relaying=relaying, poll_s=0.01, on_wait=waits.append
    )
    waiting = asyncio.create_task(backlog.wait())
    await eventually(lambda: len(polls) >= 5, what="the backlog polling a full outbox")
    assert not waiting.done()
    await _send_all(db)
    waited = await asyncio.wait_for(waiting, 10)
    assert 0 < waited < 30
    assert waits == [waited]


async def test_the_wait_is_bounded(db: Database) -> None:
    await _pending(db, 10)
    backlog = OutboxBacklog(db, limit=10, max_wait_s=0.1, relaying=lambda: True, poll_s=0.01)
    assert await asyncio.wait_for(backlog.wait(), 10) > 0


async def test_nothing_waits_while_nothing_relays(db: Database) -> None:
    """The broker is down (circuit open) or this process runs no relay: waiting would only
    slow every request."""
    await _pending(db, 10)
    backlog = OutboxBacklog(db, limit=10, max_wait_s=30, relaying=lambda: False)
    assert await backlog.wait() == 0.0
    disabled = OutboxBacklog(db, limit=0, max_wait_s=30, relaying=lambda: True)
    assert await disabled.wait() == 0.0


async def test_a_recent_count_plus_own_rows_spares_the_query(db: Database) -> None:
    """Under the limit by a recent count and this process's own rows since: no query (rows
    of other replicas are seen at the next count); over it: counted again, and waited for."""
    await _pending(db, 5)
    backlog = OutboxBacklog(db, limit=10, max_wait_s=0.1, relaying=lambda: True, poll_s=0.01)
    assert await backlog.pending() == 5
    await _pending(db, 20)  # another replica's rows, not yet seen
    backlog.added(3)
    assert await backlog.wait() == 0.0
    backlog.added(2)  # 5 counted + 5 own >= 10: count again
    assert await asyncio.wait_for(backlog.wait(), 10) > 0
    assert await backlog.pending() == 10  # counted up to the limit
