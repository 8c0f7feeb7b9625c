"""The databases the doctoral service reads and writes, and the column types they share.

Five databases, one URL setting each: ``batchdb`` is ours (migrated by
``migrations/doctoral``); ``userdb``, ``inscription_db``, ``defensedb`` and
``notification_db`` belong to the portal's other services and are never
migrated by us. They are separate servers or schemas, so a check that spans
two of them reads each and joins in memory, never in SQL.

The owners' schemas were created by Hibernate on MariaDB, which stores Java
booleans as ``bit(1)``; the MariaDB driver hands those back as ``b'\\x01'``
(and ``bool(b'\\x00')`` is True). :class:`Bit` is the one place that turns
them into Python booleans, on every engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from tranche.core.db import Database
from tranche.core.settings import PoolSettings

__all__ = [
    "FOREIGN",
    "Bit",
    "Dt6",
    "Id",
    "Sources",
    "as_bool",
    "enum",
]

#: Names of the foreign databases, as their owners call them.
FOREIGN = ("userdb", "inscription_db", "defensedb", "notification_db")


def as_bool(value: object) -> bool | None:
    """A ``bit(1)``/boolean/integer column value as a boolean (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return int.from_bytes(bytes(value), "big") != 0
    return bool(value)


class Bit(TypeDecorator[bool]):
    """Hibernate's boolean: ``bit(1)`` on MariaDB, ``boolean`` elsewhere; a bool in Python."""

    impl = sa.Boolean
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(create_constraint=False)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.BIT(1))
        return dialect.type_descriptor(sa.Boolean(create_constraint=False))

    def process_bind_param(self, value: bool | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name in ("mysql", "mariadb"):
            return 1 if value else 0
        return bool(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> bool | None:
        return as_bool(value)


#: ``bigint`` primary key (SQLite needs INTEGER for its rowid to auto-increment).
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: Hibernate's LocalDateTime/Instant column: ``datetime(6)`` on MariaDB.
Dt6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def enum(*values: str) -> TypeEngine[str]:
    """``@Enumerated(STRING)``: a native ``enum(...)`` on MariaDB, VARCHAR + CHECK elsewhere.

    Either way a value outside the owner's list is refused by the database, so a
    wrong value fails a test exactly as it would fail in production.
    """
    portable = sa.Enum(
        *values,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
        validate_strings=False,
    )
    return portable.with_variant(mysql.ENUM(*values), "mysql", "mariadb")


@dataclass
class Sources:
    """Open engines for batchdb and the four foreign databases."""

    batchdb: Database
    userdb: Database
    inscription_db: Database
    defensedb: Database
    notification_db: Database

    @classmethod
    def open(cls, urls: dict[str, str], pool: PoolSettings) -> Sources:
        """``urls`` maps ``batchdb`` and each name of :data:`FOREIGN` to a database URL."""
        missing = [n for n in ("batchdb", *FOREIGN) if n not in urls]
        if missing:
            raise ValueError(f"no URL for database(s): {', '.join(missing)}")
        return cls(**{n: Database.open(n, urls[n], pool) for n in ("batchdb", *FOREIGN)})

    def __iter__(self) -> Iterator[Database]:
        return iter(
            (self.batchdb, self.userdb, self.inscription_db, self.defensedb, self.notification_db)
        )

    def foreign(self) -> list[Database]:
        return [self.userdb, self.inscription_db, self.defensedb, self.notification_db]

    async def close(self) -> None:
        for db in self:
            await db.close()
