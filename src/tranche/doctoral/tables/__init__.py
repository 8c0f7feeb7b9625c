"""The owning services' schemas, table by table (reference §2-5).

The same ``Table`` objects serve two purposes: the jobs' queries are written
against them (so a column that does not exist in the owner's schema cannot be
queried), and tests and the demo create them with :func:`create_foreign_schema`
— native ``enum(...)``, ``bit(1)`` and ``datetime(6)`` columns on MariaDB as
Hibernate makes them, VARCHAR with CHECK constraints on PostgreSQL and SQLite.
In production these databases belong to their services and are never created
or migrated by us.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tranche.doctoral.tables import defensedb, inscription_db, notification_db, userdb

__all__ = [
    "FOREIGN_SCHEMAS",
    "create_foreign_schema",
    "ddl",
    "defensedb",
    "inscription_db",
    "notification_db",
    "userdb",
]

#: Database name (as its owner calls it) → its tables.
FOREIGN_SCHEMAS: dict[str, sa.MetaData] = {
    "userdb": userdb.metadata,
    "inscription_db": inscription_db.metadata,
    "defensedb": defensedb.metadata,
    "notification_db": notification_db.metadata,
}


async def create_foreign_schema(engine: AsyncEngine, name: str) -> None:
    """Create database ``name``'s tables (those missing) on ``engine``; for tests and the demo."""
    metadata = FOREIGN_SCHEMAS[name]
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def ddl(name: str, dialect: str) -> str:
    """``CREATE TABLE`` statements of database ``name`` for mysql, postgresql or sqlite."""
    from sqlalchemy.dialects import mysql, postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    target = {"mysql": mysql, "mariadb": mysql, "postgresql": postgresql, "sqlite": sqlite}[
        dialect
    ].dialect()
    out = []
    for table in FOREIGN_SCHEMAS[name].sorted_tables:
        out.append(str(CreateTable(table).compile(dialect=target)).strip() + ";")
        out += [str(CreateIndex(ix).compile(dialect=target)) + ";" for ix in table.indexes]
    return "\n\n".join(out) + "\n"
