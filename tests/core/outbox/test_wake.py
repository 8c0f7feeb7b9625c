"""Commit wake-ups: immediate by default, deferred to ``Held.release`` for held sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from tests.fixtures.broker import unique_topic
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue_many, wake


class Woken:
    """A relay stand-in: the rows of each wake-up it was given."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.calls.append([row[0] for row in rows])  # event ids (COPY_COLUMNS order)


@pytest.fixture
def woken(pg_db: Database) -> Any:
    callback = Woken()
    engine = pg_db.engine.sync_engine
    wake.register(engine, callback)
    yield callback
    wake.unregister(engine, callback)


async def _commit(db: Database, topic: str, n: int, held: wake.Held | None = None) -> list[str]:
    async with db.transaction() as s:
        if held is not None:
            wake.hold(s, held)
        return await enqueue_many(s, [OutboxEvent(topic, str(i), {"i": i}) for i in range(n)])


async def test_a_commit_wakes_the_relay_with_its_rows(pg_db: Database, woken: Woken) -> None:
    ids = await _commit(pg_db, unique_topic("wake"), 3)
    assert woken.calls == [ids]


async def test_held_commits_wake_the_relay_once_released_with_all_their_rows(
    pg_db: Database, woken: Woken
) -> None:
    topic = unique_topic("held")
    held = wake.Held()
    first = await _commit(pg_db, topic, 100, held)  # COPY from 64 rows up
    second = await _commit(pg_db, topic, 2, held)
    assert woken.calls == []  # committed, but nobody woken yet
    held.release()
    assert woken.calls == [first + second]
    held.release()  # nothing more to deliver
    assert woken.calls == [first + second]


async def test_a_held_transaction_rolled_back_wakes_nobody(pg_db: Database, woken: Woken) -> None:
    held = wake.Held()

    async def failing_request() -> None:
        async with pg_db.transaction() as s:
            wake.hold(s, held)
            await enqueue_many(s, [OutboxEvent(unique_topic("lost"), "1", {"i": 1})])
            raise RuntimeError("business rule failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    held.release()
    assert woken.calls == []
