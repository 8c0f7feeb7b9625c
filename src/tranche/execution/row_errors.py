"""Telling a row the database refused from a database that cannot be reached.

A chunk whose bulk statement fails because of a row (a constraint, a value the column
cannot hold, a trigger) is retried row by row so that only that row fails, with the
database's own message; any other failure (connection lost, database down) is raised
and answered 503. Shared by the bulk writer and the benchmarks' sequential writer.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InternalError

__all__ = ["db_error_message", "is_row_error"]

_ROW_ERRORS = (IntegrityError, DataError, InternalError)
#: SQLSTATE classes that describe the row, not the connection: 22 data exception (a value
#: the column cannot hold, such as NUL in text), 23 integrity constraint violation. The
#: asyncpg adapter raises most of class 22 as a plain DBAPIError, so the class decides.
_ROW_SQLSTATE_CLASSES = ("22", "23")


def db_error_message(exc: DBAPIError) -> str:
    """The database's own message, without SQL, parameters or driver class names."""
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if text.startswith("<class '") and ">: " in text:
        text = text.split(">: ", 1)[1]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"Database error: {first[:300]}"


def is_row_error(exc: DBAPIError) -> bool:
    """The database refused this row (constraint, data, trigger), not the connection."""
    if exc.connection_invalidated:
        return False
    if isinstance(exc, _ROW_ERRORS):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in _ROW_SQLSTATE_CLASSES
