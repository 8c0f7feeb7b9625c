"""What dataConsistencyJob finds in the demo: consistent roles and uploads, then some faults.

First the portal is made consistent where the other seeders leave it bare:
validated doctorants without a completed defense hold ROLE_DOCTORANT_ACTIF,
and a third of the validated enrollments have a CV uploaded (a file in the
uploads directory and its ``documents_inscription`` row). Then, on purpose:

* enrollments of doctorants that do not exist in userdb;
* defense requests under way for doctorants whose enrollment was never validated;
* doctorants missing ROLE_DOCTORANT_ACTIF, and doctors who still hold it;
* orphan files (a day and more old) and one fresh upload the job must leave alone.

PENDING notifications older than a day already come from the notification seeder.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.doctoral.seed.base import insert_rows, next_id
from tranche.doctoral.seed.people import PeopleSeeding
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import userdb as U

__all__ = ["ConsistencySeeding"]

_PLANTED = 3


class ConsistencySeeding(PeopleSeeding):
    async def consistency(
        self, doctorants: Sequence[int], directors: Sequence[int], uploads: Path | None
    ) -> None:
        validated, completed = await self._facts()
        await self._roles(validated, completed)
        enrollments = await self._bare_enrollments(directors)
        await self._defenses_without_enrollment(doctorants, directors)
        if uploads is not None:
            await self._uploads(uploads, enrollments)
        self.report.add("inconsistencies planted (enrollments of deleted users)", _PLANTED)

    async def _facts(self) -> tuple[list[int], set[int]]:
        async with self.inscription_db.sessions() as s:
            validated = sorted(
                int(v)
                for v in (
                    await s.execute(
                        sa.select(I.inscriptions.c.doctorant_id)
                        .where(I.inscriptions.c.statut == "VALIDE")
                        .distinct()
                    )
                ).scalars()
            )
        async with self.defensedb.sessions() as s:
            completed = {
                int(v)
                for v in (
                    await s.execute(
                        sa.select(D.defense_requests.c.doctorant_id).where(
                            D.defense_requests.c.status == "COMPLETED"
                        )
                    )
                ).scalars()
            }
        return validated, completed

    async def _roles(self, validated: list[int], completed: set[int]) -> None:
        async with self.userdb.sessions() as s:
            actif = int(
                (
                    await s.execute(
                        sa.select(U.roles.c.id).where(U.roles.c.name == "ROLE_DOCTORANT_ACTIF")
                    )
                ).scalar_one()
            )
            held = set(
                (
                    await s.execute(
                        sa.select(U.user_roles.c.user_id).where(U.user_roles.c.role_id == actif)
                    )
                ).scalars()
            )
            known = set((await s.execute(sa.select(U.users.c.id))).scalars())
        # A second seeding adds to the first: its doctorants' roles are already settled,
        # and its planted enrollments of deleted users have nobody to give a role to.
        validated = [d for d in validated if d not in held and d in known]
        completed = {d for d in completed if d not in held and d in known}
        active = [d for d in validated if d not in completed]
        # The first few active doctorants are left without the role; doctors keep it by mistake.
        holders = active[_PLANTED:] + sorted(completed)[:_PLANTED]
        await insert_rows(
            self.userdb, U.user_roles, [{"user_id": u, "role_id": actif} for u in holders]
        )
        self.report.add(
            "inconsistencies planted (ROLE_DOCTORANT_ACTIF missing)", min(_PLANTED, len(active))
        )
        self.report.add(
            "inconsistencies planted (doctors still ROLE_DOCTORANT_ACTIF)",
            min(_PLANTED, len(completed)),
        )

    async def _bare_enrollments(self, directors: Sequence[int]) -> list[int]:
        """Enrollments of doctorants deleted from userdb; returns the ids of all validated ones."""
        ghost = await next_id(self.userdb, U.users) + 100_000
        first_id = await next_id(self.inscription_db, I.inscriptions)
        async with self.inscription_db.sessions() as s:
            campaign = int((await s.execute(sa.select(sa.func.min(I.campagnes.c.id)))).scalar_one())
        created = self.now - timedelta(days=400)
        rows = [
            self._enrollment(first_id + n, ghost + n, directors[0], campaign, created, "VALIDE")
            for n in range(_PLANTED)
        ]
        await insert_rows(self.inscription_db, I.inscriptions, rows)
        async with self.inscription_db.sessions() as s:
            return [
                int(v)
                for v in (
                    await s.execute(
                        sa.select(I.inscriptions.c.id).where(
                            I.inscriptions.c.statut == "VALIDE", I.inscriptions.c.id < first_id
                        )
                    )
                ).scalars()
            ]

    def _enrollment(
        self, id_: int, doctorant: int, director: int, campaign: int, created: datetime, statut: str
    ) -> dict[str, Any]:
        validated = statut == "VALIDE"
        return {
            "id": id_,
            "doctorant_id": doctorant,
            "directeur_these_id": director,
            "campagne_id": campaign,
            "sujet_these": "Sujet d'une inscription à vérifier",
            "type": "PREMIERE_INSCRIPTION",
            "annee_inscription": created.year,
            "statut": statut,
            "date_creation": created,
            "date_validation": created + timedelta(days=14) if validated else None,
            "date_premiere_inscription": created if validated else None,
            "derogation": None,
            "motif_derogation": None,
            "bloque_re_inscription": False,
        }

    async def _defenses_without_enrollment(
        self, doctorants: Sequence[int], directors: Sequence[int]
    ) -> None:
        """New users, enrollment still awaiting the admin, yet a defense request under way."""
        people = await self.users(_PLANTED, "ROLE_DOCTORANT")
        # Counted apart: "users ROLE_DOCTORANT" stays the demo's 50 x scale.
        self.report.add("users ROLE_DOCTORANT", -_PLANTED)
        self.report.add("users ROLE_DOCTORANT (defense without enrollment)", _PLANTED)
        first_id = await next_id(self.inscription_db, I.inscriptions)
        async with self.inscription_db.sessions() as s:
            campaign = int((await s.execute(sa.select(sa.func.max(I.campagnes.c.id)))).scalar_one())
        created = self.now - timedelta(days=30)
        await insert_rows(
            self.inscription_db,
            I.inscriptions,
            [
                self._enrollment(
                    first_id + n,
                    p,
                    directors[n % len(directors)],
                    campaign,
                    created,
                    "EN_ATTENTE_ADMIN",
                )
                for n, p in enumerate(people)
            ],
        )
        req = await next_id(self.defensedb, D.defense_requests)
        requests, juries = [], []
        for n, p in enumerate(people):
            requests.append(
                {
                    "id": req + n,
                    "doctorant_id": p,
                    "submission_date": self.now - timedelta(days=10),
                    "status": ("SUBMITTED", "JURY_PROPOSED", "AUTHORIZED")[n % 3],
                    "rejection_reason": None,
                    "prerequisites_id": None,
                }
            )
            juries.append(
                {
                    "director_id": directors[n % len(directors)],
                    "status": "PROPOSED",
                    "proposal_date": self.now - timedelta(days=5),
                    "validation_date": None,
                    "defense_request_id": req + n,
                }
            )
        await insert_rows(self.defensedb, D.defense_requests, requests)
        await insert_rows(self.defensedb, D.juries, juries)
        self.report.add("inconsistencies planted (defense requests without enrollment)", _PLANTED)

    async def _uploads(self, uploads: Path, enrollments: list[int]) -> None:
        old = (self.now - timedelta(days=3)).replace(tzinfo=UTC).timestamp()
        files: list[tuple[Path, float]] = []
        documents = []
        for n, inscription in enumerate(enrollments[::3]):
            name = f"cv_{int(old * 1000) + n}_{inscription}_{self.fake.lexify('????????')}.pdf"
            files.append((uploads / name, old))
            documents.append(
                {
                    "inscription_id": inscription,
                    "type_document": "CV",
                    "nom_fichier": "cv.pdf",
                    "chemin_fichier": f"./uploads/{name}",
                    "taille_fichier": 9,
                    "mime_type": "application/pdf",
                    "date_upload": self.now - timedelta(days=3),
                    "valide": True,
                    "commentaire": None,
                }
            )
        for n in range(_PLANTED):
            name = f"autre_{int(old * 1000) + n}_0_{self.fake.lexify('????????')}.pdf"
            files.append((uploads / name, old))
        fresh = (self.now - timedelta(minutes=10)).replace(tzinfo=UTC).timestamp()
        files.append(
            (uploads / f"cv_{int(fresh * 1000)}_0_{self.fake.lexify('????????')}.pdf", fresh)
        )
        await asyncio.to_thread(_write_files, uploads, files)
        await insert_rows(self.inscription_db, I.documents_inscription, documents)
        self.report.add("uploads referenced", len(documents))
        self.report.add("inconsistencies planted (orphan files)", _PLANTED)
        self.report.add("uploads in flight (left alone)", 1)


def _write_files(uploads: Path, files: list[tuple[Path, float]]) -> None:
    uploads.mkdir(parents=True, exist_ok=True)
    for path, mtime in files:
        path.write_bytes(b"%PDF-1.4\n")
        os.utime(path, (mtime, mtime))
