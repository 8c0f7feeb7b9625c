"""Column types that behave the same on PostgreSQL, MariaDB and SQLite.

The originals ran on PostgreSQL only; our embedded default is SQLite, which has
no decimal or time-zone types and no blank-padded ``char``. These decorators make
the three databases return the same Python values, so service code and tests
never branch on the dialect.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["EIGHT_PLACES", "Char", "Quantity", "UtcDateTime"]

EIGHT_PLACES = Decimal("0.00000001")


class Quantity(TypeDecorator[Decimal]):
    """``decimal(18,8)`` read back as :class:`~decimal.Decimal` on every database.

    SQLite has no decimal type: values travel as REAL (about 15 significant digits)
    and are re-quantized to eight places on the way out. SQLite is the development
    default; PostgreSQL and MariaDB store them exactly.
    """

    impl = sa.Numeric(18, 8)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Numeric(18, 8, asdecimal=False))
        return dialect.type_descriptor(sa.Numeric(18, 8))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return float(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value.quantize(EIGHT_PLACES)
        return Decimal(repr(value)).quantize(EIGHT_PLACES)


class Char(TypeDecorator[str]):
    """``char(n)`` read back without PostgreSQL's blank padding."""

    impl = sa.CHAR
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value).rstrip(" ")


class UtcDateTime(TypeDecorator[datetime]):
    """The one UTC timestamp column type of tranche: every table's datetime columns use it.

    - Storage: ``timestamptz`` on PostgreSQL; ``DATETIME(6)`` (microseconds, naive, in UTC)
      on MariaDB/MySQL, whose plain ``DATETIME`` would drop the fraction; SQLite's text
      ``DATETIME`` (naive, in UTC, microseconds kept).
    - Python: values always come back timezone-aware in UTC, whatever the database.
    - Input: an aware datetime is converted to UTC; a *naive* one is taken to be UTC
      already (never local time), as every caller here produces UTC and the doctoral
      sources hand over the originals' naive UTC ``LocalDateTime`` values.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
