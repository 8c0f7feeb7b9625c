"""One record to archive: its row, every related row, and the files that go with it.

An enrollment brings its campaign, ``infos_doctorant``, ``infos_these``,
``documents_inscription``, ``documents_generes``, ``validations_inscription``,
``derogation_requests`` (the inline ``documents_justificatifs`` blob goes into
the archive as a file; the JSON names it) and ``alertes_duree``. Its files are
``chemin_fichier`` of both document tables, found under the uploads directory.

A defense brings its request, prerequisites, jury and members, reports,
authorisation and ``documents`` rows (whose ``file_url`` are client-supplied
strings: defense-service stores no such file), and the procès-verbal PDFs
``pv_defense_<id>_*.pdf`` in defense-service's storage directory.

A stored path is taken as relative to the uploads directory, or to its
parent (the owner stores paths relative to its working directory, e.g.
``uploads/cv_…pdf``), or absolute; the file must lie inside the directory,
because it is deleted once archived — a row naming ``/etc/passwd`` is refused.
A missing file raises :class:`MissingDocumentError`: the record is skipped and
stays a candidate, so no archive claims a document it does not hold.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.core.db import Database
from tranche.doctoral.archive.format import SourceFile
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

__all__ = [
    "ArchiveRecord",
    "MissingDocumentError",
    "RecordLoader",
    "jsonable",
    "resolve_under",
]

ENROLLMENT, DEFENSE = "ENROLLMENT", "DEFENSE"


class MissingDocumentError(LookupError):
    """A document the record references is not where it should be."""


@dataclass(frozen=True)
class ArchiveRecord:
    entity: str
    entity_id: int
    document: dict[str, Any]
    files: list[SourceFile]
    row: dict[str, Any] = field(default_factory=dict)


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    return value


def _row(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): jsonable(v) for k, v in mapping.items()}


def resolve_under(stored: str, base: Path) -> Path:
    """Where a stored path is on disk, inside ``base`` (see the module docstring)."""
    root = base.resolve()
    given = Path(stored)
    candidates = [given] if given.is_absolute() else [root / given, root.parent / given]
    inside = [c.resolve() for c in candidates if c.resolve().is_relative_to(root)]
    if not inside:
        raise MissingDocumentError(f"{stored!r} is outside {root}")
    for candidate in inside:
        if candidate.is_file():
            return candidate
    raise MissingDocumentError(f"{stored!r} not found in {root}")


def _member(index: int, label: str, name: str) -> str:
    suffix = Path(name).suffix.lower()[:10]
    return f"files/{index:03d}_{label.lower()}{suffix}"


class RecordLoader:
    def __init__(
        self, inscription_db: Database, defensedb: Database, uploads: Path, pv_storage: Path
    ) -> None:
        self.inscription_db, self.defensedb = inscription_db, defensedb
        self.uploads, self.pv_storage = uploads, pv_storage

    async def _rows(self, db: Database, table: sa.Table, column: str, value: Any) -> list[Any]:
        if value is None:
            return []
        async with db.sessions() as s:
            query = sa.select(table).where(table.c[column] == value).order_by(table.c.id)
            return [r._mapping for r in (await s.execute(query)).all()]

    async def enrollment(self, inscription_id: int) -> ArchiveRecord:
        db = self.inscription_db
        (ins,) = await self._rows(db, I.inscriptions, "id", inscription_id)
        related = {
            t.name: await self._rows(db, t, "inscription_id", inscription_id)
            for t in (
                I.infos_doctorant,
                I.infos_these,
                I.documents_inscription,
                I.documents_generes,
                I.validations_inscription,
                I.derogation_requests,
                I.alertes_duree,
            )
        }
        campaigns = await self._rows(db, I.campagnes, "id", ins["campagne_id"])
        files: list[SourceFile] = []
        for table in ("documents_inscription", "documents_generes"):
            for doc in related[table]:
                label = doc.get("type_document") or doc.get("type") or "document"
                path = resolve_under(doc["chemin_fichier"], self.uploads)
                origin = {
                    "table": table,
                    "id": doc["id"],
                    "storedPath": doc["chemin_fichier"],
                    "path": str(path),
                    "removable": True,
                }
                files.append(
                    SourceFile(_member(len(files) + 1, label, path.name), origin, path=path)
                )
        derogations = []
        for der in related["derogation_requests"]:
            blob, out = der["documents_justificatifs"], _row(der)
            if blob:
                member = f"files/{len(files) + 1:03d}_derogation_{der['id']}.bin"
                origin = {"table": "derogation_requests", "id": der["id"], "removable": False}
                files.append(SourceFile(member, origin, data=bytes(blob)))
                out["documents_justificatifs"] = {"member": member, "size": len(blob)}
            derogations.append(out)
        document = {
            "entityType": ENROLLMENT,
            "entityId": inscription_id,
            "inscription": _row(ins),
            "campagne": _row(campaigns[0]) if campaigns else None,
            **{k: [_row(r) for r in v] for k, v in related.items()},
            "derogation_requests": derogations,
        }
        return ArchiveRecord(
            ENROLLMENT, inscription_id, document, files, _enrollment_row(ins, related, campaigns)
        )

    async def defense(self, defense_id: int) -> ArchiveRecord:
        db = self.defensedb
        (defense,) = await self._rows(db, D.defenses, "id", defense_id)
        request_id = defense["defense_request_id"]
        requests = await self._rows(db, D.defense_requests, "id", request_id)
        request = requests[0] if requests else None
        juries = await self._rows(db, D.juries, "defense_request_id", request_id)
        members = [
            m for j in juries for m in await self._rows(db, D.jury_members, "jury_id", j["id"])
        ]
        prerequisites = await self._rows(
            db, D.prerequisites, "id", request["prerequisites_id"] if request else None
        )
        related = {
            t.name: await self._rows(db, t, "defense_request_id", request_id)
            for t in (D.rapports, D.autorisations_soutenance, D.documents)
        }
        pvs = sorted(self.pv_storage.glob(f"pv_defense_{defense_id}_*.pdf"))
        if not pvs:
            raise MissingDocumentError(
                f"defense {defense_id}: no pv_defense_{defense_id}_*.pdf in {self.pv_storage}"
            )
        files = [
            SourceFile(
                f"files/{n:03d}_{pv.name}",
                {
                    "table": "defenses",
                    "id": defense_id,
                    "path": str(pv.resolve()),
                    "removable": True,
                },
                path=pv.resolve(),
            )
            for n, pv in enumerate(pvs, 1)
        ]
        doctorant = request["doctorant_id"] if request else None
        document = {
            "entityType": DEFENSE,
            "entityId": defense_id,
            "defense": _row(defense),
            "defense_request": _row(request) if request else None,
            "prerequisites": [_row(p) for p in prerequisites],
            "juries": [_row(j) for j in juries],
            "jury_members": [_row(m) for m in members],
            **{k: [_row(r) for r in v] for k, v in related.items()},
        }
        when: datetime | None = defense["defense_date"]
        row = {
            "id": defense_id,
            "defense_request_id": request_id,
            "doctorant_id": doctorant,
            "inscription_id": await self._latest_enrollment(doctorant),
            "defense_date": when.date() if when else None,
            "defense_time": when.time() if when else None,
            "location": defense["location"],
            "mention": defense["mention"],
            "jury_id": juries[0]["id"] if juries else None,
            "pv_signed": True,
            "pv_file_path": str(pvs[-1].resolve()),
            "rapport_file_path": None,
            "status": defense["status"],
            "created_at": None,
            "updated_at": None,
        }
        return ArchiveRecord(DEFENSE, defense_id, document, files, row)

    async def _latest_enrollment(self, doctorant: int | None) -> int | None:
        """The link the owners have: the doctorant's latest enrollment (reference §4)."""
        if doctorant is None:
            return None
        ins = I.inscriptions
        async with self.inscription_db.sessions() as s:
            found = (
                await s.execute(
                    sa.select(sa.func.max(ins.c.id)).where(ins.c.doctorant_id == doctorant)
                )
            ).scalar()
        return None if found is None else int(found)


def _enrollment_row(
    ins: Mapping[str, Any], related: dict[str, list[Any]], campaigns: list[Any]
) -> dict[str, Any]:
    these = related["infos_these"][0] if related["infos_these"] else None
    rejections = [v for v in related["validations_inscription"] if v["statut"] == "REJETE"]
    rejection = max(rejections, key=lambda v: v["date_validation"] or datetime.min, default=None)
    granted = [d for d in related["derogation_requests"] if d["statut"] == "APPROUVE_PED"]
    rejected = ins["statut"] == "REJETE"
    return {
        "id": ins["id"],
        "doctorant_id": ins["doctorant_id"],
        "status": ins["statut"],
        "date_validation": ins["date_validation"],
        "date_rejection": rejection["date_validation"] if rejection and rejected else None,
        "motif_refus": (
            (rejection["commentaire"] if rejection else None) or ins["commentaire_admin"]
            if rejected
            else None
        ),
        "date_premiere_inscription": ins["date_premiere_inscription"],
        "annee_universitaire": (campaigns[0]["annee_universitaire"] if campaigns else None)
        or ins["annee_inscription"],
        "discipline": these["discipline"] if these else None,
        "laboratoire": these["laboratoire"] if these else None,
        "directeur_these_id": ins["directeur_these_id"],
        "co_directeur_these_id": None,
        "sujet_these": ins["sujet_these"],
        "has_derogation": bool(ins["derogation"]),
        "derogation_motif": ins["motif_derogation"],
        "derogation_date": granted[-1]["date_validation"] if granted else None,
    }
