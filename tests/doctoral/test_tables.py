"""The fixture schemas behave like the owners' Hibernate-made tables on each engine."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.doctoral.factories import Portal, opened
from tranche.doctoral.sources import as_bool
from tranche.doctoral.tables import create_foreign_schema, ddl
from tranche.doctoral.tables import inscription_db as I


def test_as_bool_reads_every_driver_form() -> None:
    assert as_bool(b"\x01") is True
    assert as_bool(b"\x00") is False  # bool(b"\x00") would be True
    assert as_bool(1) is True and as_bool(0) is False
    assert as_bool(True) is True and as_bool(None) is None


def test_mariadb_ddl_has_hibernate_types() -> None:
    text = ddl("inscription_db", "mysql")
    assert "statut ENUM('BROUILLON','SOUMIS'" in text
    assert "bloque_re_inscription BIT(1) NOT NULL" in text
    assert "date_premiere_inscription DATETIME(6)" in text
    assert "CHECK" not in text.split("CREATE TABLE inscriptions")[1].split(";")[0]
    portable = ddl("inscription_db", "sqlite")
    assert "CHECK (statut IN ('BROUILLON'" in portable


async def test_owner_vocabulary_is_enforced(any_database_url: str) -> None:
    async with opened(any_database_url) as db:
        await create_foreign_schema(db.engine, "userdb")
        await create_foreign_schema(db.engine, "inscription_db")
        portal = Portal(db, db)
        doc = await portal.user()
        eid = await portal.enrollment(doc, doc, datetime(2021, 1, 4, 9, 30, 0, 123456))
        # The seed's vocabulary is not the owner's: 'BLOQUÉ'/'SUSPENDU' do not exist.
        for bad in ("BLOQUÉ", "SUSPENDU"):
            with pytest.raises((IntegrityError, DBAPIError)):
                async with db.transaction() as s:
                    await s.execute(
                        sa.update(I.inscriptions)
                        .where(I.inscriptions.c.id == eid)
                        .values(statut=bad)
                    )
        # The owner's own mechanism round-trips as a boolean on every engine.
        async with db.transaction() as s:
            await s.execute(
                sa.update(I.inscriptions)
                .where(I.inscriptions.c.id == eid)
                .values(bloque_re_inscription=True)
            )
        async with db.sessions() as s:
            row = (
                await s.execute(
                    sa.select(
                        I.inscriptions.c.statut,
                        I.inscriptions.c.bloque_re_inscription,
                        I.inscriptions.c.derogation,
                        I.inscriptions.c.date_premiere_inscription,
                    )
                )
            ).one()
        assert row.statut == "VALIDE"
        assert row.bloque_re_inscription is True
        assert row.derogation is None
        assert row.date_premiere_inscription == datetime(2021, 1, 4, 9, 30, 0, 123456)


@pytest.mark.mariadb
async def test_mariadb_tables_match_hibernate(mariadb_url: str) -> None:
    async with opened(mariadb_url) as db:
        await create_foreign_schema(db.engine, "inscription_db")
        async with db.engine.connect() as conn:
            create = (await conn.execute(sa.text("SHOW CREATE TABLE inscriptions"))).one()[1]
        assert "`statut` enum('BROUILLON'" in create
        assert "`bloque_re_inscription` bit(1) NOT NULL" in create
        assert "`derogation` bit(1) DEFAULT NULL" in create
        assert "`date_creation` datetime(6) NOT NULL" in create
