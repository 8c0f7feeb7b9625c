"""Async SQLAlchemy engines for PostgreSQL (asyncpg), MariaDB (asyncmy) and SQLite (aiosqlite).

One URL setting picks the database; the pool shape comes from :class:`PoolSettings`.
Plain ``postgresql://``/``mysql://``/``mariadb://``/``sqlite://`` URLs are upgraded to
their async drivers so operators can paste the URL their other tools use.

Lost connections are recognised here, once, for every engine: SQLAlchemy's asyncpg
dialect counts an error as a disconnect only when the driver already reports the
socket closed, which misses a backend killed mid-statement (``pg_terminate_backend``,
a failover) and a connection whose protocol a cancelled statement left mid-operation
(asyncpg's ``InternalClientError: cannot switch to state …``). The pool then kept
handing that connection out and every request on it failed until a restart.
:func:`is_disconnect_error` reads the driver's error; a ``handle_error`` listener
makes SQLAlchemy invalidate the connection and raise it as ``OperationalError``
(the database is unavailable: 503, retry later), and :meth:`Database.transaction`
does the same for driver calls made beside SQLAlchemy (binary ``COPY``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool
from sqlalchemy.util.concurrency import await_

from tranche.core.settings import PoolSettings

__all__ = [
    "Database",
    "PoolCollector",
    "create_engine",
    "dialect_of",
    "is_disconnect_error",
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


#: SQLSTATEs meaning the server ended the session: class 08 (connection exception) and
#: 57P01-57P03 (administrator or crash shutdown, cannot connect now). Not the rest of
#: class 57: 57014 is a cancelled statement on a connection that is still good.
_DISCONNECT_SQLSTATES = ("08", "57P01", "57P02", "57P03")
#: asyncpg's words for a connection that can no longer run a statement.
_BROKEN_CONNECTION = ("connection is closed", "another operation is in progress")


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy error → adapter error → driver error."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return chain


def _ends_connection(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.InternalClientError):
        return True  # the protocol is in a state no statement can start from
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate.startswith(_DISCONNECT_SQLSTATES)
    if isinstance(exc, asyncpg.InterfaceError):
        return any(words in str(exc) for words in _BROKEN_CONNECTION)
    return False


def is_disconnect_error(exc: BaseException) -> bool:
    """The connection that raised ``exc`` is lost or unusable (not the statement's fault).

    A socket error counts only beneath a database error: raised bare inside a session it
    may come from any other client the code calls there.
    """
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    chain = _causes(exc)
    if any(_ends_connection(cause) for cause in chain):
        return True
    return isinstance(exc, DBAPIError) and any(isinstance(c, ConnectionError) for c in chain)


def _unavailable(exc: BaseException, statement: str | None = None) -> OperationalError:
    """``exc`` as the error every service answers 503 to, its connection invalidated."""
    text = statement if statement is not None else "(driver call)"
    # Parameters hidden: the error may be logged, and they are the request's data.
    return OperationalError(text, None, exc, hide_parameters=True, connection_invalidated=True)


def _on_error(ctx: ExceptionContext) -> BaseException | None:
    """``handle_error`` listener: invalidate a lost connection and raise OperationalError."""
    if not ctx.is_disconnect and not is_disconnect_error(ctx.original_exception):
        return None
    ctx.is_disconnect = True  # the pool discards this connection instead of reusing it
    if ctx.is_pre_ping or isinstance(ctx.sqlalchemy_exception, OperationalError):
        return None
    return _unavailable(ctx.original_exception, ctx.statement)


def _ping_asyncpg(dbapi_connection: Any) -> bool:
    """The pre-ping in one round trip: an empty statement, outside any transaction.

    SQLAlchemy's asyncpg adapter wraps its ping in ``BEGIN`` … ``ROLLBACK`` (for
    pgbouncer in transaction mode, which this service does not sit behind): three
    round trips at every checkout, a sixth of a 500-row chunk's. A lost connection
    still fails here and is replaced, as with the adapter's ping."""
    try:
        await_(dbapi_connection._connection.fetchrow(";"))
    except Exception as error:
        dbapi_connection._handle_exception(error)
    return True


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
    event.listen(engine.sync_engine, "handle_error", _on_error)
    if engine.dialect.driver == "asyncpg":
        # On the instance: the dialect class is SQLAlchemy's, shared with other engines.
        setattr(engine.sync_engine.dialect, "do_ping", _ping_asyncpg)  # noqa: B010
    if backend == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class _Session(AsyncSession):
    """A session that reports a lost connection as ``OperationalError`` however it was lost.

    Errors SQLAlchemy sees go through :func:`_on_error`; this catches the driver's own
    errors raised beside it — a connection killed while the dialect was still setting
    it up, a binary ``COPY`` through the driver connection — which would otherwise
    reach the caller as a bare ``asyncpg`` exception (a 500 instead of a 503).
    """

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        lost = isinstance(value, Exception) and _raw_disconnect(value)
        if lost:
            await self.invalidate()  # the connection, if it got one, is not reused
        await super().__aexit__(type_, value, traceback)
        if lost:
            raise _unavailable(value) from value


def _close_on_return(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """``checkin`` listener of a disposed pool: close the connection instead of keeping it."""
    record.invalidate()


def _raw_disconnect(exc: Exception) -> bool:
    """A lost connection not yet reported as an invalidated DBAPIError."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return False
    return is_disconnect_error(exc)


@dataclass
class Database:
    """An engine and its session factory, named for metrics and health."""

    name: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, name: str, url: str | URL, pool: PoolSettings) -> Database:
        engine = create_engine(url, pool)
        return cls(
            name, engine, async_sessionmaker(engine, class_=_Session, expire_on_commit=False)
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on exit and rolls back on error.

        A lost connection (see :func:`is_disconnect_error`) is invalidated before the
        rollback and raised as ``OperationalError``, also when a driver call made
        beside SQLAlchemy lost it. So is a connection whose statement was cancelled
        (the task was): its protocol state is unknown, and a new connection is cheap.
        """
        async with self.sessions() as session, session.begin():
            try:
                yield session
            except asyncio.CancelledError:
                await session.invalidate()
                raise
            except Exception as exc:
                if not _raw_disconnect(exc):
                    raise
                await session.invalidate()  # not rolled back on a connection that is gone
                raise _unavailable(exc) from exc

    async def ping(self) -> dict[str, Any]:
        """Round-trip ``SELECT 1``; raises if the database cannot be reached."""
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"database": self.dialect, "url": redact(self.engine.url)}

    async def close(self) -> None:
        """Close the pooled connections; one still checked out is closed when returned.

        ``dispose()`` closes only the idle connections and swaps in a new pool. A
        connection in use meanwhile (a request or a background round still running)
        would go back to the discarded pool and stay open until the garbage collector
        found it, unclosed, at some random later point."""
        retired = self.engine.sync_engine.pool
        await self.engine.dispose()
        # On the old pool only, after the swap: the new pool copied the old one's
        # listeners when it was made, so this one never reaches it.
        event.listen(retired, "checkin", _close_on_return)


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
