from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from tranche.core.db import Database, PoolCollector, dialect_of, normalize_url, redact
from tranche.core.settings import PoolSettings

POOL = PoolSettings(pool_size=2, max_overflow=1, pool_timeout=5, pool_recycle=60)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("mariadb://u@h/db", "mysql+asyncmy"),
        ("mysql://u@h/db", "mysql+asyncmy"),
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_get_async_drivers(url: str, driver: str) -> None:
    assert normalize_url(url).drivername == driver


def test_redact_hides_password() -> None:
    assert "hunter2" not in redact("postgresql://u:hunter2@h/db")
    assert dialect_of("mariadb://u@h/db") == "mysql"


async def test_round_trip_and_pool_gauges(any_database_url: str) -> None:
    db = Database.open("main", any_database_url, POOL)
    try:
        async with db.transaction() as s:
            await s.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, name VARCHAR(20))"))
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO probe (id, name) VALUES (1, 'written')"))
        async with db.sessions() as s:
            assert (await s.execute(text("SELECT name FROM probe"))).scalar_one() == "written"

        async def write_then_fail() -> None:
            async with db.transaction() as s:
                await s.execute(text("INSERT INTO probe (id, name) VALUES (2, 'rolled back')"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await write_then_fail()
        async with db.sessions() as s:
            assert (await s.execute(text("SELECT count(*) FROM probe"))).scalar_one() == 1
        details = await db.ping()
        assert details["database"] == db.dialect

        registry = CollectorRegistry()
        registry.register(PoolCollector([db]))
        async with db.engine.connect():
            assert registry.get_sample_value("db_pool_in_use", {"pool": "main"}) == 1
        assert registry.get_sample_value("db_pool_size", {"pool": "main"}) == 2
    finally:
        await db.close()


async def test_a_pooled_connection_killed_while_idle_is_replaced_unnoticed(
    postgres_url: str,
) -> None:
    # A failover or a DBA's pg_terminate_backend while the connection sat in the pool:
    # the checkout's ping finds it dead and the pool connects anew, the caller sees nothing.
    db = Database.open("main", postgres_url, POOL)
    try:
        async with db.transaction() as s:
            before = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        admin = Database.open("admin", postgres_url, POOL)
        try:
            async with admin.sessions() as other:
                killed = await other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": before})
                assert killed.scalar_one() is True
        finally:
            await admin.close()
        async with db.transaction() as s:
            after = (await s.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert after != before
    finally:
        await db.close()


async def test_a_connection_in_use_when_the_database_closes_is_closed_when_returned(
    postgres_url: str,
) -> None:
    # A request or a background round still holding its connection at shutdown. dispose()
    # closes only the idle ones: this one went back to the discarded pool, open, and the
    # garbage collector reported it ("unclosed connection") in whatever test ran later.
    db = Database.open("main", postgres_url, POOL)
    holding, release = asyncio.Event(), asyncio.Event()
    driver: list[Any] = []

    async def hold() -> None:
        async with db.sessions() as s:
            raw = await (await s.connection()).get_raw_connection()
            driver.append(raw.driver_connection)
            holding.set()
            await release.wait()

    task = asyncio.create_task(hold())
    try:
        await holding.wait()
        await db.close()
        assert not driver[0].is_closed()  # in use: closing the database leaves it alone
        release.set()
        await task
        assert driver[0].is_closed()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()
    finally:
        release.set()
        await task
        for connection in driver:
            connection.terminate()  # without the fix: not left for a later test to find
        await db.close()
