"""Which database errors are transient: worth retrying the chunk after a short backoff.

Deadlocks, lock wait timeouts, serialization failures and lost connections go away
when the transaction is run again; constraint violations, bad data and syntax errors
do not (those are for the skip policy, or fail the step). Recognised by the driver's
error code where it has one (MariaDB/MySQL numbers, PostgreSQL SQLSTATE), by
SQLAlchemy's ``connection_invalidated``, and by SQLite's "database is locked".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from tranche.core.logging import get_logger

__all__ = [
    "BOOKKEEPING_RETRY_SECONDS",
    "MYSQL_TRANSIENT",
    "POSTGRES_TRANSIENT",
    "is_transient_db_error",
    "persist",
]

log = get_logger(__name__)
T = TypeVar("T")

#: How long the engine keeps retrying a write of its own bookkeeping (a step's start or
#: end, the job's end and lock release) through a transient database error: long enough
#: for a database server restart or failover, short against the job lock's staleness
#: (``BATCH_LOCK_STALE_AFTER_SECONDS``, 120 s), after which crash recovery takes over.
BOOKKEEPING_RETRY_SECONDS = 60.0

#: MariaDB/MySQL: deadlock, lock wait timeout, server gone away, lost connection, cannot
#: connect, too many connections, query interrupted by a server restart.
MYSQL_TRANSIENT = frozenset({1213, 1205, 2006, 2013, 2003, 1040, 1053, 1927})
#: PostgreSQL SQLSTATE: serialization failure, deadlock, lock not available, connection
#: failures (class 08), admin shutdown / crash shutdown / cannot connect now.
POSTGRES_TRANSIENT = frozenset({"40001", "40P01", "55P03", "57P01", "57P02", "57P03"})
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


def _mysql_code(orig: BaseException) -> int | None:
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def _sqlstate(orig: BaseException) -> str | None:
    for name in ("sqlstate", "pgcode"):
        value = getattr(orig, name, None)
        if isinstance(value, str):
            return value
    return None


def is_transient_db_error(exc: BaseException) -> bool:
    """True for a database error that a retry of the same transaction may not meet again.

    An exception group (lookups run side by side in a ``TaskGroup``) is transient when
    every error in it is: a killed connection under one of five parallel reads is still
    a killed connection.
    """
    if isinstance(exc, BaseExceptionGroup):
        return all(is_transient_db_error(e) for e in exc.exceptions)
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if orig is None:
        return False
    code = _mysql_code(orig)
    if code is not None and code in MYSQL_TRANSIENT:
        return True
    state = _sqlstate(orig)
    if state is not None and (state in POSTGRES_TRANSIENT or state.startswith("08")):
        return True
    text = str(orig).lower()
    return any(marker in text for marker in _SQLITE_TRANSIENT)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "batch.bookkeeping.retry",
            what=what,
            attempt=state.attempt_number,
            error=f"{type(error).__name__}: {error}"[:300],
        )

    return before_sleep


async def persist(
    operation: Callable[[], Awaitable[T]],
    what: str,
    within_s: float = BOOKKEEPING_RETRY_SECONDS,
) -> T:
    """``await operation()``, retried on transient database errors for up to ``within_s``.

    For the engine's own writes outside a chunk (a chunk has its retry policy): without it,
    a connection killed while a step's end or the job's end was written left the execution
    STARTED and its lock held until the lock went stale, and the step's outcome was lost.
    Each operation is one transaction that is safe to run again (conditional updates; an
    insert whose transaction was lost never committed).
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(is_transient_db_error),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        stop=stop_after_delay(within_s),
        before_sleep=_log_retry(what),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await operation()
    raise AssertionError("tenacity returned without a result")  # pragma: no cover
