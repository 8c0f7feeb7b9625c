"""Which database errors are transient: worth retrying the chunk after a short backoff.

Deadlocks, lock wait timeouts, serialization failures and lost connections go away
when the transaction is run again; constraint violations, bad data and syntax errors
do not (those are for the skip policy, or fail the step). Recognised by the driver's
error code where it has one (MariaDB/MySQL numbers, PostgreSQL SQLSTATE), by
SQLAlchemy's ``connection_invalidated``, and by SQLite's "database is locked".
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

__all__ = ["MYSQL_TRANSIENT", "POSTGRES_TRANSIENT", "is_transient_db_error"]

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
    """True for a database error that a retry of the same transaction may not meet again."""
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
