"""Async SQLAlchemy engines for PostgreSQL (asyncpg), MariaDB (asyncmy) and SQLite (aiosqlite).

One URL setting picks the database; the pool shape comes from :class:`PoolSettings`.
Plain ``postgresql://``/``mysql://``/``mariadb://``/``sqlite://`` URLs are upgraded to
their async drivers so operators can paste the URL their other tools use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import QueuePool

from tranche.core.settings import PoolSettings

__all__ = [
    "Database",
    "PoolCollector",
    "create_engine",
    "dialect_of",
    "normalize_url",
    "redact",
]

_ASYNC_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "sqlite": "sqlite+aiosqlite",
}


def normalize_url(url: str | URL) -> URL:
    """Return ``url`` with an async driver; MariaDB uses the mysql dialect with asyncmy."""
    parsed = make_url(url) if isinstance(url, str) else url
    if "+" not in parsed.drivername:
        parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    if parsed.drivername.startswith("mariadb+"):
        parsed = parsed.set(drivername="mysql+" + parsed.drivername.split("+", 1)[1])
    return parsed


def dialect_of(url: str | URL) -> str:
    """``postgresql``, ``mysql`` (MariaDB too) or ``sqlite``."""
    return normalize_url(url).get_backend_name()


def redact(url: str | URL) -> str:
    """The URL with its password hidden, for logs and errors."""
    return normalize_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run while the relay or a job writes; busy_timeout turns
    # writer contention into a short wait instead of "database is locked".
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def create_engine(url: str | URL, pool: PoolSettings) -> AsyncEngine:
    """An async engine with the pool shape from settings (SQLite gets WAL and a busy timeout)."""
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {"echo": pool.echo, "pool_pre_ping": True}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    kwargs.update(
        pool_size=pool.pool_size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.pool_timeout,
        pool_recycle=pool.pool_recycle,
    )
    if backend == "mysql":
        # Hibernate-created MariaDB schemas store LocalDateTime without zone; we
        # keep the session in UTC so naive datetimes we write are UTC.
        kwargs["connect_args"] = {"init_command": "SET time_zone = '+00:00'"}
    engine = _create_async_engine(parsed, **kwargs)
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


@dataclass
class Database:
    """An engine and its session factory, named for metrics and health."""

    name: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, name: str, url: str | URL, pool: PoolSettings) -> Database:
        engine = create_engine(url, pool)
        return cls(name, engine, async_sessionmaker(engine, expire_on_commit=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on exit and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> dict[str, Any]:
        """Round-trip ``SELECT 1``; raises if the database cannot be reached."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"database": self.dialect, "url": redact(self.engine.url)}

    async def close(self) -> None:
        await self.engine.dispose()


class PoolCollector(Collector):
    """Prometheus gauges for the connection pools of the given databases."""

    def __init__(self, databases: Iterable[Database]) -> None:
        self._databases = list(databases)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        size = GaugeMetricFamily("db_pool_size", "Configured pool size", labels=["pool"])
        used = GaugeMetricFamily("db_pool_in_use", "Connections checked out", labels=["pool"])
        idle = GaugeMetricFamily("db_pool_idle", "Idle connections in the pool", labels=["pool"])
        over = GaugeMetricFamily("db_pool_overflow", "Connections above pool size", labels=["pool"])
        for db in self._databases:
            pool = db.engine.sync_engine.pool
            if isinstance(pool, QueuePool):
                size.add_metric([db.name], pool.size())
                used.add_metric([db.name], pool.checkedout())
                idle.add_metric([db.name], pool.checkedin())
                over.add_metric([db.name], max(pool.overflow(), 0))
        return [size, used, idle, over]
