"""Database maintenance runs each engine's own statement, outside a transaction, and reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.doctoral.factories import POOL
from tests.fixtures.servers import mariadb_databases, postgres_databases
from tranche.core.db import Database
from tranche.doctoral.archive.maintenance import maintain
from tranche.doctoral.tables import create_foreign_schema
from tranche.doctoral.tables import notification_db as N


@pytest.fixture(params=["sqlite", "mariadb", "postgres"])
async def notification_db(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'n.db'}"
        db = Database.open("notification_db", url, POOL)
        yield db
        await db.close()
        return
    servers = mariadb_databases() if request.param == "mariadb" else postgres_databases()
    async with servers as factory:
        db = Database.open("notification_db", await factory("notif"), POOL)
        yield db
        await db.close()


async def test_maintenance_statement_per_engine(notification_db: Database) -> None:
    db = notification_db
    await create_foreign_schema(db.engine, "notification_db")
    async with db.transaction() as s:
        await s.execute(
            sa.insert(N.notifications),
            [
                {
                    "type": "RAPPEL_ECHEANCE",
                    "destinataire": f"u{n}@x.fr",
                    "statut": "SENT",
                    "priorite": "NORMALE",
                    "date_creation": datetime(2026, 1, 1),
                }
                for n in range(50)
            ],
        )
        await s.execute(sa.delete(N.notifications).where(N.notifications.c.id % 2 == 0))
    results = await maintain(db, "notifications")
    expected = {
        "mariadb": ["OPTIMIZE", "ANALYZE"],
        "mysql": ["OPTIMIZE", "ANALYZE"],
        "postgresql": ["VACUUM ANALYZE"],
        "sqlite": ["ANALYZE"],
    }[db.dialect]
    assert sorted({r["operation"] for r in results}) == sorted(expected)
    assert all(
        r["table"] == "notifications" and r["database"] == "notification_db" for r in results
    )
    if db.dialect in ("mariadb", "mysql"):
        # InnoDB answers OPTIMIZE with a note (recreate + analyze) and a status row.
        assert any(r["status"] == "status" and r["message"] == "OK" for r in results), results
    async with db.sessions() as s:
        assert (
            await s.execute(sa.select(sa.func.count()).select_from(N.notifications))
        ).scalar() == 25
