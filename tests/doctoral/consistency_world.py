"""A portal with one deliberate inconsistency of each kind, for the dataConsistencyJob tests.

Also: snapshots of every owner's table (to prove nothing else changed), the
outbox's events, and fresh databases per test on SQLite and MariaDB.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.doctoral.factories import Portal, server_urls, sqlite_urls
from tests.doctoral.harness import Databases, prepare
from tests.fixtures.servers import mariadb_databases
from tranche.core.db import Database
from tranche.core.outbox import outbox_table
from tranche.doctoral.tables import FOREIGN_SCHEMAS
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

RUN = datetime(2025, 3, 17, 23, 0, tzinfo=UTC)
RUN_NAIVE = RUN.replace(tzinfo=None)
TECH = "tech.admin@univ-exemple.fr"
ADMIN = "admin.portail@univ-exemple.fr"
DIRECTOR = "directeur.jury@univ-exemple.fr"
MISSING_DOCTORANT = 9_000_001


@pytest.fixture(params=["sqlite", "mariadb"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    """New databases for each test: SQLite files and the local MariaDB server (production's)."""
    if request.param == "sqlite":
        directory = tmp_path / "db"
        directory.mkdir()
        yield Databases("sqlite", await prepare(sqlite_urls(directory)))
        return
    async with mariadb_databases() as factory:
        yield Databases("mariadb", await prepare(await server_urls(factory)))


def aged(path: Path, age: timedelta) -> Path:
    stamp = (RUN - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


@dataclass
class World:
    """The ids and paths of what was planted."""

    uploads: Path
    admin: int = 0
    director: int = 0
    fine: int = 0
    missing_enrollment: int = 0
    no_enrollment_doctorant: int = 0
    orphan_request: int = 0
    without_actif: int = 0
    doctor: int = 0
    pending_old: int = 0
    pending_young: int = 0
    files: dict[str, Path] = field(default_factory=dict)


async def role_id(db: Database, name: str) -> int:
    async with db.sessions() as s:
        return int(
            (await s.execute(sa.select(U.roles.c.id).where(U.roles.c.name == name))).scalar_one()
        )


async def grant(db: Database, user: int, role: str) -> None:
    rid = await role_id(db, role)
    async with db.transaction() as s:
        await s.execute(sa.insert(U.user_roles).values(user_id=user, role_id=rid))


async def defense_request(
    db: Database, doctorant: int, status: str, director: int | None, defense: str | None = None
) -> int:
    async with db.transaction() as s:
        rid = (
            await s.execute(
                sa.insert(D.defense_requests).values(
                    doctorant_id=doctorant, submission_date=datetime(2025, 1, 10), status=status
                )
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        if director is not None:
            await s.execute(
                sa.insert(D.juries).values(
                    director_id=director, status="PROPOSED", defense_request_id=rid
                )
            )
        if defense is not None:
            await s.execute(
                sa.insert(D.defenses).values(
                    defense_date=datetime(2025, 2, 1, 14),
                    status=defense,
                    mention="TRES_HONORABLE",
                    publication_recommended=False,
                    defense_request_id=rid,
                )
            )
    return int(rid)


async def document(db: Database, inscription: int, stored: str, generated: bool = False) -> None:
    async with db.transaction() as s:
        if generated:
            await s.execute(
                sa.insert(I.documents_generes).values(
                    inscription_id=inscription,
                    type="ATTESTATION_INSCRIPTION",
                    chemin_fichier=stored,
                    date_generation=datetime(2024, 10, 1),
                    taille_fichier=10,
                )
            )
            return
        await s.execute(
            sa.insert(I.documents_inscription).values(
                inscription_id=inscription,
                type_document="CV",
                nom_fichier="cv.pdf",
                chemin_fichier=stored,
                taille_fichier=10,
                mime_type="application/pdf",
                date_upload=datetime(2024, 10, 1),
            )
        )


async def pending(db: Database, to: str, created: datetime, tries: int = 0) -> int:
    async with db.transaction() as s:
        r = await s.execute(
            sa.insert(N.notifications).values(
                type="INSCRIPTION_VALIDEE_ADMIN",
                destinataire=to,
                sujet="Votre inscription est validée",
                message_texte="Bonjour, votre inscription a été validée.",
                message_html="<p>Bonjour, votre inscription a été <b>validée</b>.</p>",
                statut="PENDING",
                priorite="NORMALE",
                donnees={"source": "test"},
                nombre_tentatives=tries,
                lu=False,
                date_creation=created,
                date_modification=created,
            )
        )
        return int(r.inserted_primary_key[0])  # type: ignore[index]


def write(path: Path, age: timedelta) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.4 test")
    return aged(path, age)


async def plant(
    portal: Portal, defensedb: Database, notification_db: Database, uploads: Path
) -> World:
    """A consistent doctorant, plus one inconsistency of each kind."""
    w = World(uploads)
    async with portal.userdb.transaction() as s:  # user-service seeds them all at startup
        have = set((await s.execute(sa.select(U.roles.c.name))).scalars())
        missing = [{"name": n} for n in U.ROLE_NAMES if n not in have]
        if missing:
            await s.execute(sa.insert(U.roles), missing)
    w.admin = await portal.user("ROLE_ADMIN", email=ADMIN)
    w.director = await portal.user("ROLE_DIRECTEUR", email=DIRECTOR)
    first = datetime(2023, 10, 2, 10)
    # Consistent: validated, active role, a defense under way, a referenced upload.
    w.fine = await portal.user(email="doctorant.ok@etu.univ-exemple.fr")
    await grant(portal.userdb, w.fine, "ROLE_DOCTORANT_ACTIF")
    fine_enrollment = await portal.enrollment(w.fine, w.director, first)
    await defense_request(defensedb, w.fine, "SUBMITTED", w.director)
    old = timedelta(days=3)
    w.files["referenced"] = write(uploads / "cv_1700000000000_1_abcdefgh.pdf", old)
    await document(
        portal.inscription_db, fine_enrollment, "./uploads/cv_1700000000000_1_abcdefgh.pdf"
    )
    w.files["attestation"] = write(
        uploads / "attestations" / "attestation_1_20241001_100000.pdf", old
    )
    await document(
        portal.inscription_db,
        fine_enrollment,
        "./uploads/attestations/attestation_1_20241001_100000.pdf",
        generated=True,
    )
    # 1. An enrollment whose doctorant was deleted from userdb.
    w.missing_enrollment = await portal.enrollment(MISSING_DOCTORANT, w.director, first)
    # 2. A defense request under way, the doctorant's enrollment never validated.
    w.no_enrollment_doctorant = await portal.user(email="sans.inscription@etu.univ-exemple.fr")
    await portal.enrollment(w.no_enrollment_doctorant, w.director, None, statut="EN_ATTENTE_ADMIN")
    w.orphan_request = await defense_request(
        defensedb, w.no_enrollment_doctorant, "JURY_PROPOSED", w.director
    )
    # ...while DRAFT and REJECTED requests are nobody's concern.
    await defense_request(defensedb, w.no_enrollment_doctorant, "DRAFT", None)
    await defense_request(defensedb, w.no_enrollment_doctorant, "REJECTED", None)
    # 3a. Validated, no defense, no ROLE_DOCTORANT_ACTIF.
    w.without_actif = await portal.user(email="sans.role@etu.univ-exemple.fr")
    await portal.enrollment(w.without_actif, w.director, first)
    # 3b. Defended (COMPLETED), still ROLE_DOCTORANT_ACTIF; userdb has no ROLE_DOCTEUR.
    w.doctor = await portal.user(email="docteur@etu.univ-exemple.fr")
    await grant(portal.userdb, w.doctor, "ROLE_DOCTORANT_ACTIF")
    await portal.enrollment(w.doctor, w.director, datetime(2020, 10, 1, 9))
    await defense_request(defensedb, w.doctor, "COMPLETED", w.director, defense="COMPLETED")
    # 4. An orphan (old), an orphan whose name is taken in the quarantine, a young one.
    w.files["orphan"] = write(uploads / "cv_1600000000000_77_zzzzzzzz.pdf", old)
    w.files["taken"] = write(uploads / "autre_1600000000000_78_yyyyyyyy.pdf", old)
    write(uploads / "orphelins" / "autre_1600000000000_78_yyyyyyyy.pdf", old)
    w.files["young"] = write(uploads / "cv_1742250000000_79_xxxxxxxx.pdf", timedelta(hours=2))
    # 5. A notification PENDING for two days, and one PENDING for an hour (left alone).
    w.pending_old = await pending(
        notification_db, "doctorant.ok@etu.univ-exemple.fr", RUN_NAIVE - timedelta(days=2)
    )
    w.pending_young = await pending(
        notification_db, "doctorant.ok@etu.univ-exemple.fr", RUN_NAIVE - timedelta(hours=1)
    )
    return w


Snapshot = dict[str, set[str]]


def _row(row: Any) -> str:
    return json.dumps(dict(row._mapping), default=str, sort_keys=True)


async def snapshot(dbs: dict[str, Database]) -> Snapshot:
    """Every row of every owner's table, as comparable JSON text."""
    out: Snapshot = {}
    for name, db in dbs.items():
        async with db.sessions() as s:
            for table in FOREIGN_SCHEMAS[name].sorted_tables:
                rows = (await s.execute(sa.select(table))).all()
                out[f"{name}.{table.name}"] = {_row(r) for r in rows}
    return out


def changes(
    before: Snapshot, after: Snapshot
) -> dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Table → (rows gone, rows new), for the tables that changed."""
    out = {}
    for table in before:
        gone, new = before[table] - after[table], after[table] - before[table]
        if gone or new:
            out[table] = ([json.loads(r) for r in gone], [json.loads(r) for r in new])
    return out


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def events(batchdb: Database) -> list[dict[str, Any]]:
    async with batchdb.sessions() as s:
        rows = (
            await s.execute(sa.select(outbox_table.c.payload).order_by(outbox_table.c.seq))
        ).all()
    return [orjson.loads(r.payload) for r in rows]
