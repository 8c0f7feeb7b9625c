"""Inserting a chunk of executions in as few round trips as the database allows.

Four methods, all returning the new ids in input order:

- ``copy`` (PostgreSQL): reserve the ids from the table's sequence with one
  ``SELECT nextval(...) FROM generate_series(...)``, then ``COPY`` the rows with
  their ids, in COPY's binary format (:mod:`~tranche.execution.copy_rows`). COPY
  cannot return ids, hence the reservation.
- ``unnest`` (PostgreSQL): the same reservation, then one
  ``INSERT … SELECT * FROM unnest($1::int[], $2::varchar[], …)``: one statement and
  one set of parameters per column, whatever the row count.
- ``values``: one multi-row ``INSERT … VALUES (…), (…) RETURNING id`` (up to 2 000
  rows a statement). The portable method, and SQLite's best. (SQLAlchemy's
  executemany "insertmanyvalues" would do the same, but with ids matched by
  parameter order it falls back to one INSERT per row on SQLite.)
- ``row``: one ``INSERT … RETURNING id`` per row — the original's path, kept as the
  benchmark baseline and for the per-item fallback.

``auto`` picks what ``tranche bench execution-insert`` measured fastest
(docs/benchmarks.md): ``copy`` on PostgreSQL (ahead of ``unnest`` and ``values`` by
5-20 % in most runs at 500 rows, about 15x ``row``), ``values`` elsewhere (about 25x).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InternalError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.execution.copy_rows import copy_data
from tranche.execution.models import execution_table

__all__ = [
    "COLUMNS",
    "METHODS",
    "RESERVING_METHODS",
    "NewRow",
    "Turn",
    "insert_one",
    "insert_rows",
    "pick_method",
]

METHODS = ("copy", "unnest", "values", "row")
#: The methods that take their ids from the sequence before inserting.
RESERVING_METHODS = ("copy", "unnest")
Turn = AbstractAsyncContextManager[None]

#: The execution table's columns in the order every bulk path (and the benchmark's
#: database floor) writes them.
COLUMNS = (
    "id",
    "execution_status",
    "trade_type",
    "destination",
    "security_id",
    "quantity",
    "limit_price",
    "received_timestamp",
    "sent_timestamp",
    "version",
    "trade_service_execution_id",
    "quantity_filled",
    "average_price",
)
#: Rows per multi-row VALUES statement (12 parameters a row; SQLite allows 32 766 parameters
#: a statement, asyncpg 32 767).
VALUES_MAX_ROWS = 2000

_PG_TYPES = (
    "integer",
    "varchar",
    "varchar",
    "varchar",
    "bpchar",
    "numeric",
    "numeric",
    "timestamptz",
    "timestamptz",
    "integer",
    "integer",
    "numeric",
    "numeric",
)


class NewRow(NamedTuple):
    """The column values of one execution to insert (its id comes from the insert).

    A tuple: one is made per row of every batch, and a frozen dataclass costs a
    ``__setattr__`` call per field."""

    execution_status: str
    trade_type: str
    destination: str
    security_id: str
    quantity: Decimal
    limit_price: Decimal | None
    received_timestamp: datetime
    trade_service_execution_id: int | None
    version: int = 1
    quantity_filled: Decimal = Decimal("0E-8")
    average_price: Decimal | None = None
    sent_timestamp: datetime | None = None

    # Spelled out rather than looped over COLUMNS: these run once per row of every batch.
    def values(self) -> dict[str, Any]:
        return {
            "execution_status": self.execution_status,
            "trade_type": self.trade_type,
            "destination": self.destination,
            "security_id": self.security_id,
            "quantity": self.quantity,
            "limit_price": self.limit_price,
            "received_timestamp": self.received_timestamp,
            "sent_timestamp": self.sent_timestamp,
            "version": self.version,
            "trade_service_execution_id": self.trade_service_execution_id,
            "quantity_filled": self.quantity_filled,
            "average_price": self.average_price,
        }


def pick_method(configured: str, dialect: str) -> str:
    """The method to use on ``dialect`` for setting ``configured`` (``auto`` or a name)."""
    if configured == "auto":
        return "copy" if dialect == "postgresql" else "values"
    if configured in ("copy", "unnest") and dialect != "postgresql":
        raise ValueError(f"insert method '{configured}' needs PostgreSQL (database is {dialect})")
    if configured not in METHODS:
        raise ValueError(f"unknown insert method '{configured}'")
    return configured


# The sequence is looked up once per statement (materialised), not once per id: called per
# row, pg_get_serial_sequence's catalogue lookups cost three times the nextval calls. One
# array instead of n rows spares the driver and SQLAlchemy a row each (1 000 ids: 0.4 ms
# instead of 2.7 ms).
_RESERVE_SQL = sa.text(
    "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence('execution', 'id')::regclass AS seq) "
    "SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, :n)"
)


async def _reserve_ids(session: AsyncSession, n: int) -> list[int]:
    result = await session.execute(_RESERVE_SQL, {"n": n})
    return sorted(result.scalar_one())


async def _reserve_in_turn(session: AsyncSession, n: int, turn: Turn | None) -> list[int]:
    if turn is None:
        return await _reserve_ids(session, n)
    async with turn:
        return await _reserve_ids(session, n)


async def _copy(session: AsyncSession, rows: Sequence[NewRow], turn: Turn | None) -> list[int]:
    ids = await _reserve_in_turn(session, len(rows), turn)
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        # A memoryview: asyncpg would take bytes for a file name (os.fspath accepts them).
        data = memoryview(copy_data(rows, ids))
        await driver.copy_to_table(
            execution_table.name, source=data, columns=COLUMNS, format="binary"
        )
    except asyncpg.PostgresError as exc:
        raise _as_dbapi_error(exc) from exc
    return ids


def _as_dbapi_error(exc: asyncpg.PostgresError) -> DBAPIError:
    """What SQLAlchemy would have raised had the COPY gone through it (by SQLSTATE class)."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    kind: type[DBAPIError] = OperationalError
    if sqlstate.startswith("23"):
        kind = IntegrityError
    elif sqlstate.startswith("22"):
        kind = DataError
    elif sqlstate.startswith("P0"):
        kind = InternalError
    return kind("COPY execution", None, exc)


_UNNEST_SQL = sa.text(
    f"INSERT INTO execution ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{c} AS {t}[])" for c, t in zip(COLUMNS, _PG_TYPES, strict=True))
    + ")"
)


async def _unnest(session: AsyncSession, rows: Sequence[NewRow], turn: Turn | None) -> list[int]:
    ids = await _reserve_in_turn(session, len(rows), turn)
    params: dict[str, list[Any]] = {"id": ids}
    for column in COLUMNS[1:]:
        params[column] = [getattr(row, column) for row in rows]
    await session.execute(_UNNEST_SQL, params)
    return ids


_INSERT_COLUMNS = COLUMNS[1:]


@lru_cache(maxsize=64)
def _values_sql(paramstyle: str, rows: int) -> str:
    """``INSERT … VALUES (…), … RETURNING id`` for ``rows`` rows in the driver's style.

    Written out rather than built with ``insert().values([...])``: SQLAlchemy compiles
    a multi-row VALUES construct anew on every call (about 0.1 s for 500 rows), which
    would cost more than the insert itself.
    """
    width = len(_INSERT_COLUMNS)
    if paramstyle == "numeric_dollar":
        groups = (
            "(" + ", ".join(f"${r * width + c + 1}" for c in range(width)) + ")"
            for r in range(rows)
        )
    else:
        groups = ("(" + ", ".join("?" * width) + ")" for _ in range(rows))
    return (
        f"INSERT INTO execution ({', '.join(_INSERT_COLUMNS)}) VALUES "
        + ", ".join(groups)
        + " RETURNING id"
    )


def _processors(dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    """Each column type's bind processing (Decimal and timestamp handling on SQLite)."""
    return [execution_table.c[c].type.bind_processor(dialect) for c in _INSERT_COLUMNS]


async def _values(session: AsyncSession, rows: Sequence[NewRow], _turn: Turn | None) -> list[int]:
    conn = await session.connection()
    dialect = conn.dialect
    if dialect.paramstyle not in ("qmark", "numeric_dollar"):
        raise ValueError(f"values method: unsupported paramstyle {dialect.paramstyle}")
    processors = _processors(dialect)
    ids: list[int] = []
    for start in range(0, len(rows), VALUES_MAX_ROWS):
        part = rows[start : start + VALUES_MAX_ROWS]
        params: list[Any] = []
        for row in part:
            for column, process in zip(_INSERT_COLUMNS, processors, strict=True):
                value = getattr(row, column)
                params.append(process(value) if process is not None else value)
        result = await conn.exec_driver_sql(
            _values_sql(dialect.paramstyle, len(part)), tuple(params)
        )
        # One multi-row statement assigns ascending ids in VALUES order (serial and
        # AUTOINCREMENT alike; SQLAlchemy's insertmanyvalues relies on the same), so the
        # sorted ids are the rows' ids in input order.
        ids.extend(sorted(int(r[0]) for r in result))
    return ids


async def insert_one(session: AsyncSession, row: NewRow) -> int:
    result = await session.execute(
        sa.insert(execution_table).values(row.values()).returning(execution_table.c.id)
    )
    return int(result.scalar_one())


async def _row(session: AsyncSession, rows: Sequence[NewRow], _turn: Turn | None) -> list[int]:
    return [await insert_one(session, row) for row in rows]


_IMPL = {"copy": _copy, "unnest": _unnest, "values": _values, "row": _row}


async def insert_rows(
    session: AsyncSession, rows: Sequence[NewRow], method: str, turn: Turn | None = None
) -> list[int]:
    """Insert ``rows`` in ``session``'s transaction; the new ids, in input order.

    ``turn`` (``copy``/``unnest``) is entered around the id reservation: chunks of one
    request written at once take their ids in request order through it."""
    if not rows:
        return []
    return await _IMPL[method](session, rows, turn)
