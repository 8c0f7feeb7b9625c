from __future__ import annotations

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
