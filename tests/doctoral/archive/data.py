# ruff: noqa: ASYNC240
"""Builders for archiveJob's tests: owners' rows with real files, a runtime with keys and folders."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.doctoral.factories import Portal
from tests.doctoral.harness import Databases
from tranche.batch import BatchSettings
from tranche.batch.model import JobExecution
from tranche.doctoral.archive.keys import Keyring, parse_key
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

RUN = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
OLD = datetime(2024, 3, 10, 9, 30)
RECENT = datetime(2025, 9, 15, 9, 30)
KEY = "q2GmU8v0j7oC5cJm3m0sVJm8Zb6q7yYc1r2X4n5p6sQ="
KEY_2 = "Ym9vdHN0cmFwLXJvdGF0ZWQta2V5LTIwMjctMDEtMDE="


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Scene:
    """A runtime on fresh databases, its folders, and what the test created."""

    runtime: Runtime
    root: Path
    portal: Portal
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def pv(self) -> Path:
        return self.root / "pv"

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    def keyring(self) -> Keyring:
        return Keyring({"k1": parse_key(KEY, "test")}, "k1")

    def _file(self, directory: Path, name: str, size: int) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / name
        path.write_bytes(os.urandom(size // 2) + b"%PDF" * (size // 8))
        self.files[str(path)] = sha256(path)
        return path

    async def enrollment(
        self,
        statut: str,
        validated: datetime | None = None,
        rejected: datetime | None = None,
        documents: int = 2,
        blob: bytes | None = None,
    ) -> int:
        doc = await self.portal.user("ROLE_DOCTORANT")
        director = await self.portal.user("ROLE_DIRECTEUR")
        iid = await self.portal.enrollment(doc, director, OLD, statut=statut)
        db = self.portal.inscription_db
        async with db.transaction() as s:
            await s.execute(
                sa.update(I.inscriptions)
                .where(I.inscriptions.c.id == iid)
                .values(date_validation=validated)
            )
            await s.execute(
                sa.insert(I.infos_these).values(
                    inscription_id=iid,
                    titre_these="Titre",
                    discipline="Informatique",
                    laboratoire="LRIT",
                    etablissement_accueil="Université",
                    date_debut_prevue=OLD.date(),
                )
            )
            for n in range(documents):
                name = f"cv_{iid}_{n}.pdf"
                path = self._file(self.uploads, name, 20_000 + n)
                await s.execute(
                    sa.insert(I.documents_inscription).values(
                        inscription_id=iid,
                        type_document="CV",
                        nom_fichier=f"mon cv {n}.pdf",
                        chemin_fichier=f"uploads/{name}" if n % 2 else name,
                        taille_fichier=path.stat().st_size,
                        date_upload=OLD,
                    )
                )
            if statut == "VALIDE" and documents:
                name = f"attestation_{iid}_20240320_101010.pdf"
                path = self._file(self.uploads / "attestations", name, 8_000)
                await s.execute(
                    sa.insert(I.documents_generes).values(
                        inscription_id=iid,
                        type="ATTESTATION_INSCRIPTION",
                        chemin_fichier=f"uploads/attestations/{name}",
                        date_generation=OLD,
                        taille_fichier=path.stat().st_size,
                    )
                )
            if rejected is not None:
                await s.execute(
                    sa.insert(I.validations_inscription).values(
                        inscription_id=iid,
                        validateur_id=0,
                        type_validateur="ADMINISTRATION",
                        statut="REJETE",
                        commentaire="Dossier incomplet",
                        date_validation=rejected,
                        date_creation=rejected,
                    )
                )
            if blob is not None:
                await s.execute(
                    sa.insert(I.derogation_requests).values(
                        inscription_id=iid,
                        motif="Retard",
                        date_demande=OLD,
                        statut="APPROUVE_PED",
                        date_validation=OLD + timedelta(days=3),
                        documents_justificatifs=blob,
                    )
                )
        return iid

    async def defense(self, status: str, held: datetime, pv: bool = True) -> int:
        db = self.runtime.sources.defensedb
        async with db.transaction() as s:
            req = (
                await s.execute(
                    sa.insert(D.defense_requests).values(
                        doctorant_id=1,
                        submission_date=held - timedelta(days=90),
                        status="COMPLETED",
                    )
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            jury = (
                await s.execute(
                    sa.insert(D.juries).values(
                        director_id=2, status="REPORTS_RECEIVED", defense_request_id=req
                    )
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            await s.execute(
                sa.insert(D.jury_members).values(
                    professor_id=3, role="PRESIDENT", status="ACCEPTED", jury_id=jury
                )
            )
            did = int(
                (
                    await s.execute(
                        sa.insert(D.defenses).values(
                            defense_date=held,
                            location="Rabat",
                            room="Amphi 1",
                            status=status,
                            proces_verbal_url=(
                                f"http://localhost:8083/api/defense-service/defenses/{req}/proces-verbal"
                                if pv
                                else None
                            ),
                            mention="TRES_HONORABLE" if status == "COMPLETED" else None,
                            publication_recommended=False,
                            defense_request_id=req,
                        )
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
        if pv:
            self._file(self.pv, f"pv_defense_{did}_{held:%Y%m%d_%H%M%S}.pdf", 12_000)
        return did

    async def run(self, at: datetime = RUN) -> JobExecution:
        spec = self.runtime.spec("archiveJob")
        return await self.runtime.launcher.run(spec.job, self.runtime.parameters("pytest", at=at))

    async def ids(self, table: sa.Table) -> set[int]:
        async with self.runtime.sources.batchdb.sessions() as s:
            return set((await s.execute(sa.select(table.c.id))).scalars())


def archive_settings(root: Path, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "archive_keys": {"k1": KEY},
        "archives_dir": root / "archives",
        "uploads_dir": root / "uploads",
        "pv_storage_dir": root / "pv",
        "batch": BatchSettings(scheduler_enabled=False),
    }
    values.update(overrides)
    return values


@asynccontextmanager
async def scene(databases: Databases, root: Path, **overrides: Any) -> AsyncIterator[Scene]:
    runtime = Runtime.build(
        databases.settings(**archive_settings(root, **overrides)), CollectorRegistry()
    )
    try:
        yield Scene(runtime, root, Portal(runtime.sources.userdb, runtime.sources.inscription_db))
    finally:
        await runtime.close()


async def assert_nothing_lost(world: Scene, before: dict[str, str]) -> int:
    """Every original file is on disk unchanged, or in a verified archive its row names.

    Returns how many were found only in archives.
    """
    from tranche.doctoral.archive.format import verify
    from tranche.doctoral.archive.models import defense_archive, inscription_archive

    archived: dict[str, str] = {}
    async with world.runtime.sources.batchdb.sessions() as s:
        for table in (inscription_archive, defense_archive):
            for row in (await s.execute(sa.select(table))).mappings():
                manifest = verify(Path(row["archive_location"]), world.keyring())
                assert sha256(Path(row["archive_location"])) == row["archive_sha256"]
                for entry in manifest["files"]:
                    if entry.get("path"):
                        archived[entry["path"]] = entry["sha256"]
    only_archived = 0
    for path, digest in before.items():
        if Path(path).exists():
            assert sha256(Path(path)) == digest, path
        else:
            assert archived.get(path) == digest, f"{path} is neither on disk nor archived"
            only_archived += 1
    return only_archived
