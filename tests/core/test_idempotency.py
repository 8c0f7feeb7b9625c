"""The idempotency-key store on each supported database (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.fixtures.waiting import eventually
from tranche.core.db import Database
from tranche.core.idempotency import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    IdempotencyStore,
    fingerprint,
    idempotency_table,
    validate_key,
)
from tranche.core.settings import PoolSettings

pytestmark = [pytest.mark.postgres, pytest.mark.mariadb]

SCOPE = "POST /things"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def db(any_database_url: str) -> AsyncIterator[Database]:
    database = Database.open(
        "idem",
        any_database_url,
        PoolSettings(pool_size=4, max_overflow=0, pool_timeout=10, pool_recycle=-1),
    )
    metadata = sa.MetaData()
    idempotency_table(metadata)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def store(db: Database, clock: Clock, **kw: float) -> IdempotencyStore:
    args = {"ttl_s": 3600.0, "lease_s": 30.0, "wait_s": 0.3, "poll_s": 0.02} | kw
    return IdempotencyStore(db, clock=clock, **args)


async def test_first_claim_owns_then_the_answer_is_replayed(db: Database, clock: Clock) -> None:
    s = store(db, clock)
    fp = fingerprint("a")
    claim = await s.claim(SCOPE, "k1", fp)
    assert claim.owner and claim.replay is None and claim.state is None
    await s.complete(claim, 201, b'{"id": 1}')
    again = await s.claim(SCOPE, "k1", fp)
    assert again.owner is None
    assert again.replay is not None
    assert (again.replay.status, again.replay.body) == (201, b'{"id": 1}')
    assert again.replay.media_type == "application/json"
    # Keys are per scope.
    other = await s.claim("POST /other", "k1", fingerprint("b"))
    assert other.owner is not None


async def test_same_key_different_request_is_refused(db: Database, clock: Clock) -> None:
    s = store(db, clock)
    claim = await s.claim(SCOPE, "k2", fingerprint("a"))
    with pytest.raises(IdempotencyKeyReused):
        await s.claim(SCOPE, "k2", fingerprint("b"))
    await s.complete(claim, 200, b"{}")
    with pytest.raises(IdempotencyKeyReused):
        await s.claim(SCOPE, "k2", fingerprint("b"))


async def test_a_duplicate_waits_for_the_first_then_replays(db: Database, clock: Clock) -> None:
    s = store(db, clock, wait_s=5.0)
    fp = fingerprint("a")
    claim = await s.claim(SCOPE, "k3", fp)
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().lower().startswith("insert"):
            inserts.append(statement)

    engine = db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        waiting = asyncio.create_task(s.claim(SCOPE, "k3", fp))
        # A second attempt to insert the key: the duplicate found it in progress and waits.
        await eventually(lambda: len(inserts) >= 2, 30, "the duplicate to wait")
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert not waiting.done()
    await s.complete(claim, 201, b"done")
    duplicate = await waiting
    assert duplicate.replay is not None and duplicate.replay.body == b"done"


async def test_a_duplicate_that_waits_too_long_gets_in_progress(db: Database, clock: Clock) -> None:
    s = store(db, clock)
    fp = fingerprint("a")
    await s.claim(SCOPE, "k4", fp)
    with pytest.raises(IdempotencyInProgress):
        await s.claim(SCOPE, "k4", fp)


async def test_a_dead_owner_is_taken_over_with_its_checkpoint_and_fenced(
    db: Database, clock: Clock
) -> None:
    s = store(db, clock)
    fp = fingerprint("a")
    first = await s.claim(SCOPE, "k5", fp)
    async with db.transaction() as session:
        await s.checkpoint(session, first, {"created": {"0": 41}})
    clock.advance(31)  # the lease ran out: the first owner is presumed dead
    second = await s.claim(SCOPE, "k5", fp)
    assert second.owner and second.owner != first.owner
    assert second.state == {"created": {"0": 41}}
    # The first owner wakes up: its writes are refused, so work is never done twice.
    with pytest.raises(IdempotencyLeaseLost):
        async with db.transaction() as session:
            await s.checkpoint(session, first, {"created": {"0": 41, "1": 42}})
    with pytest.raises(IdempotencyLeaseLost):
        await s.complete(first, 201, b"stale")
    await s.complete(second, 201, b"fresh")
    assert (await s.claim(SCOPE, "k5", fp)).replay.body == b"fresh"  # type: ignore[union-attr]


async def test_checkpoint_rolls_back_with_the_callers_transaction(
    db: Database, clock: Clock
) -> None:
    s = store(db, clock)
    claim = await s.claim(SCOPE, "k6", fingerprint("a"))

    async def failing_business_write() -> None:
        async with db.transaction() as session:
            await s.checkpoint(session, claim, {"step": 1})
            raise RuntimeError("the business write failed")

    with pytest.raises(RuntimeError):
        await failing_business_write()
    row = await s.lookup(SCOPE, "k6")
    assert row is not None and row["state"] is None


async def test_release_forgets_or_hands_over(db: Database, clock: Clock) -> None:
    s = store(db, clock)
    fp = fingerprint("a")
    bare = await s.claim(SCOPE, "k7", fp)
    await s.release(bare)
    assert await s.lookup(SCOPE, "k7") is None
    with_state = await s.claim(SCOPE, "k8", fp)
    async with db.transaction() as session:
        await s.checkpoint(session, with_state, {"n": 1})
    await s.release(with_state)
    resumed = await s.claim(SCOPE, "k8", fp)  # no lease to wait out
    assert resumed.state == {"n": 1}


async def test_expired_keys_are_forgotten_and_purged(db: Database, clock: Clock) -> None:
    s = store(db, clock)
    fp = fingerprint("a")
    claim = await s.claim(SCOPE, "k9", fp)
    await s.complete(claim, 200, b"old")
    clock.advance(3601)
    fresh = await s.claim(SCOPE, "k9", fingerprint("different body, after expiry"))
    assert fresh.owner is not None
    await s.complete(fresh, 200, b"new")
    old = await s.claim(SCOPE, "k10", fp)
    await s.complete(old, 200, b"x")
    clock.advance(3601)
    assert await s.purge_expired() == 2
    assert await s.lookup(SCOPE, "k10") is None


def test_key_rules_and_fingerprints() -> None:
    assert validate_key("abc-123") is None
    assert validate_key(" ") is not None
    assert validate_key("x" * 256) is not None
    assert validate_key("a\nb") is not None
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
    assert fingerprint(b"x") == fingerprint("x")
