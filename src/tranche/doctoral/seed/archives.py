"""Documents on disk and records old enough for archiveJob, so the demo's archive run does work.

For every enrollment already seeded: a CV and a master's diploma uploaded to the
uploads directory (inscription-service's flat names
``<type>_<epochMillis>_<doctorantId>_<8 chars>.<ext>``, ``chemin_fichier``
relative to its working directory) and, once validated, an attestation under
``uploads/attestations``. Then, for a share of the doctorants, an enrollment
rejected by the administration 13-30 months ago (with its REJETE
``validations_inscription`` row) and a defense COMPLETED 13-30 months ago with
its procès-verbal PDF in defense-service's storage directory.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.doctoral.seed.base import SeedBase, insert_rows, next_id
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

__all__ = ["ArchiveSeeding"]


def _pdf(path: Path, text: str, size: int) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"%PDF-1.4\n% " + text.encode() + b"\n" + secrets.token_bytes(size)
    path.write_bytes(body)
    return len(body)


class ArchiveSeeding(SeedBase):
    async def documents(self, uploads: Path, pv_storage: Path) -> None:
        """Files for every enrollment, plus old rejected enrollments and completed defenses."""
        async with self.inscription_db.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(
                        I.inscriptions.c.id,
                        I.inscriptions.c.doctorant_id,
                        I.inscriptions.c.statut,
                        I.inscriptions.c.date_creation,
                        I.inscriptions.c.campagne_id,
                        I.inscriptions.c.directeur_these_id,
                        I.inscriptions.c.sujet_these,
                    ).order_by(I.inscriptions.c.id)
                )
            ).all()
        rejected = await self._rejected(rows[:: max(1, len(rows) // 8)])
        uploaded: list[dict[str, Any]] = []
        generated: list[dict[str, Any]] = []
        for iid, doctorant, statut, created, *_ in [*rows, *rejected]:
            for kind in ("CV", "DIPLOME_MASTER"):
                millis = int(created.timestamp() * 1000)
                name = f"{kind.lower()}_{millis}_{doctorant}_{secrets.token_hex(4)}.pdf"
                size = _pdf(uploads / name, f"{kind} {doctorant}", self.rng.randint(2_000, 30_000))
                uploaded.append(
                    {
                        "inscription_id": iid,
                        "type_document": kind,
                        "nom_fichier": f"{kind.lower()}.pdf",
                        "chemin_fichier": f"{uploads.name}/{name}",
                        "taille_fichier": size,
                        "mime_type": "application/pdf",
                        "date_upload": created,
                        "valide": statut == "VALIDE",
                    }
                )
            if statut == "VALIDE":
                name = f"attestation_{iid}_{created:%Y%m%d_%H%M%S}.pdf"
                path = uploads / "attestations" / name
                size = _pdf(path, f"attestation {iid}", self.rng.randint(1_000, 5_000))
                generated.append(
                    {
                        "inscription_id": iid,
                        "type": "ATTESTATION_INSCRIPTION",
                        "chemin_fichier": f"{uploads.name}/attestations/{name}",
                        "date_generation": created + timedelta(days=14),
                        "taille_fichier": size,
                    }
                )
        await insert_rows(self.inscription_db, I.documents_inscription, uploaded)
        await insert_rows(self.inscription_db, I.documents_generes, generated)
        self.report.add("documents on disk", len(uploaded) + len(generated))
        await self._proces_verbaux(pv_storage)
        # Only doctorants with a VALIDE enrollment defend: any other would be an
        # inconsistency dataConsistencyJob reports, and the demo plants those on purpose.
        defended = sorted({int(r[1]) for r in rows if r[2] == "VALIDE"})
        await self._old_defenses(defended[::5], pv_storage)

    async def _proces_verbaux(self, pv_storage: Path) -> None:
        """The PV file of every completed defense already seeded (defense-service's names)."""
        d = D.defenses.c
        async with self.defensedb.sessions() as s:
            done = (
                await s.execute(
                    sa.select(d.id, d.deliberation_date, d.defense_date).where(
                        d.status == "COMPLETED", d.proces_verbal_url.is_not(None)
                    )
                )
            ).all()
        for defense_id, deliberated, held in done:
            at = deliberated or held or self.now
            pv = pv_storage / f"pv_defense_{defense_id}_{at:%Y%m%d_%H%M%S}.pdf"
            _pdf(pv, f"proces-verbal {defense_id}", self.rng.randint(5_000, 40_000))
        self.report.add("proces-verbaux on disk", len(done))

    async def _rejected(self, sample: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A rejected re-enrollment 13-30 months ago for each sampled enrollment's doctorant."""
        new_id = await next_id(self.inscription_db, I.inscriptions)
        rows, validations, out = [], [], []
        for _iid, doctorant, _statut, _created, campaign, director, subject in sample:
            created = self.now - timedelta(days=30 * self.rng.randint(13, 30))
            rows.append(
                {
                    "id": new_id,
                    "doctorant_id": doctorant,
                    "directeur_these_id": director,
                    "campagne_id": campaign,
                    "sujet_these": subject,
                    "type": "REINSCRIPTION",
                    "annee_inscription": created.year,
                    "statut": "REJETE",
                    "date_creation": created,
                    "commentaire_admin": "Dossier incomplet",
                    "bloque_re_inscription": False,
                }
            )
            validations.append(
                {
                    "inscription_id": new_id,
                    "validateur_id": 0,
                    "type_validateur": "ADMINISTRATION",
                    "statut": "REJETE",
                    "commentaire": "Pièces justificatives manquantes",
                    "date_validation": created + timedelta(days=7),
                    "date_creation": created + timedelta(days=2),
                }
            )
            out.append((new_id, doctorant, "REJETE", created))
            new_id += 1
        await insert_rows(self.inscription_db, I.inscriptions, rows)
        await insert_rows(self.inscription_db, I.validations_inscription, validations)
        self.report.add("inscriptions rejected > 1 year ago", len(rows))
        return out

    async def _old_defenses(self, doctorants: Sequence[int], pv_storage: Path) -> None:
        req_id = await next_id(self.defensedb, D.defense_requests)
        defense_id = await next_id(self.defensedb, D.defenses)
        requests, defenses = [], []
        for doctorant in doctorants:
            held = self.now - timedelta(days=30 * self.rng.randint(13, 30))
            requests.append(
                {
                    "id": req_id,
                    "doctorant_id": doctorant,
                    "submission_date": held - timedelta(days=90),
                    "status": "COMPLETED",
                }
            )
            defenses.append(
                {
                    "id": defense_id,
                    "defense_date": held,
                    "location": f"Université de {self.fake.city()}",
                    "room": f"Amphi {self.rng.randint(1, 9)}",
                    "status": "COMPLETED",
                    "proces_verbal_url": (
                        f"http://localhost:8083/api/defense-service/defenses/{defense_id}"
                        "/proces-verbal"
                    ),
                    "mention": self.rng.choice(D.MENTIONS),
                    "publication_recommended": False,
                    "deliberation_date": held + timedelta(hours=3),
                    "defense_request_id": req_id,
                }
            )
            pv = pv_storage / f"pv_defense_{defense_id}_{held:%Y%m%d_%H%M%S}.pdf"
            _pdf(pv, f"proces-verbal {defense_id}", self.rng.randint(5_000, 40_000))
            req_id += 1
            defense_id += 1
        await insert_rows(self.defensedb, D.defense_requests, requests)
        await insert_rows(self.defensedb, D.defenses, defenses)
        self.report.add("defenses completed > 1 year ago", len(defenses))
        self.report.add("proces-verbaux on disk", len(defenses))
