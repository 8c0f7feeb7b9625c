"""dureeDoctoratAlertJob's reader: validated enrollments with what deciding needs, per page.

The rows live in three databases that cannot be joined in SQL, so each page of
``inscriptions`` (keyset by id) is completed in memory with:

* inscription_db: per doctorant, the latest validated enrollment and whether any
  of their enrollments holds a derogation (the PED marks the first one);
* batchdb: the alert types already sent to each doctorant (``alerte_duree_envoyee``);
* userdb: the doctorant's and the thesis director's name and email.

Four queries per page instead of four per enrollment. The position is the id of
the last enrollment handed out, so a restart resumes right after the last
committed chunk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from tranche.core.db import Database
from tranche.doctoral.models import alerte_duree_envoyee
from tranche.doctoral.tables.inscription_db import inscriptions
from tranche.doctoral.tables.userdb import users

__all__ = ["Enrollment", "EnrollmentReader", "Person"]

INS = inscriptions


@dataclass(frozen=True)
class Person:
    id: int
    email: str
    first_name: str
    last_name: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Enrollment:
    """One validated enrollment and the facts from the other databases about its doctorant."""

    inscription_id: int
    doctorant_id: int
    directeur_id: int
    date_premiere_inscription: date
    bloque_re_inscription: bool
    run_date: date
    is_current: bool
    derogation: bool
    already_sent: frozenset[str]
    doctorant: Person | None
    directeur: Person | None


class EnrollmentReader:
    def __init__(
        self,
        inscription_db: Database,
        batchdb: Database,
        userdb: Database,
        run_date: date,
        page_size: int,
    ) -> None:
        self.inscription_db, self.batchdb, self.userdb = inscription_db, batchdb, userdb
        self.run_date = run_date
        self.page_size = page_size
        self._buffer: deque[Enrollment] = deque()
        self._last_read: int | None = None
        self._last_fetched: int | None = None
        self._exhausted = False

    async def open(self, position: Any | None) -> None:
        self._last_read = self._last_fetched = None if position is None else int(position)
        self._buffer.clear()
        self._exhausted = False

    async def read(self) -> Enrollment | None:
        if not self._buffer and not self._exhausted:
            await self._fetch()
        if not self._buffer:
            return None
        item = self._buffer.popleft()
        self._last_read = item.inscription_id
        return item

    def position(self) -> int | None:
        return self._last_read

    async def close(self) -> None:
        self._buffer.clear()

    async def _fetch(self) -> None:
        query = (
            sa.select(
                INS.c.id,
                INS.c.doctorant_id,
                INS.c.directeur_these_id,
                INS.c.date_premiere_inscription,
                INS.c.bloque_re_inscription,
            )
            .where(INS.c.statut == "VALIDE", INS.c.date_premiere_inscription.is_not(None))
            .order_by(INS.c.id)
            .limit(self.page_size)
        )
        if self._last_fetched is not None:
            query = query.where(INS.c.id > self._last_fetched)
        async with self.inscription_db.sessions() as s:
            rows = (await s.execute(query)).all()
        self._exhausted = len(rows) < self.page_size
        if not rows:
            return
        self._last_fetched = int(rows[-1].id)
        doctorants = {int(r.doctorant_id) for r in rows}
        current, derogated = await self._doctorant_facts(doctorants)
        sent = await self._sent(doctorants)
        people = await self._people(doctorants | {int(r.directeur_these_id) for r in rows})
        for r in rows:
            doc = int(r.doctorant_id)
            first: datetime = r.date_premiere_inscription
            self._buffer.append(
                Enrollment(
                    inscription_id=int(r.id),
                    doctorant_id=doc,
                    directeur_id=int(r.directeur_these_id),
                    date_premiere_inscription=first.date(),
                    bloque_re_inscription=bool(r.bloque_re_inscription),
                    run_date=self.run_date,
                    is_current=current.get(doc) == int(r.id),
                    derogation=doc in derogated,
                    already_sent=frozenset(sent.get(doc, ())),
                    doctorant=people.get(doc),
                    directeur=people.get(int(r.directeur_these_id)),
                )
            )

    async def _doctorant_facts(self, doctorants: set[int]) -> tuple[dict[int, int], set[int]]:
        latest_valid = sa.func.max(sa.case((INS.c.statut == "VALIDE", INS.c.id), else_=None))
        any_derogation = sa.func.max(sa.case((INS.c.derogation == sa.true(), 1), else_=0))
        query = (
            sa.select(INS.c.doctorant_id, latest_valid.label("latest"), any_derogation.label("der"))
            .where(INS.c.doctorant_id.in_(sorted(doctorants)))
            .group_by(INS.c.doctorant_id)
        )
        async with self.inscription_db.sessions() as s:
            rows = (await s.execute(query)).all()
        current = {int(r.doctorant_id): int(r.latest) for r in rows if r.latest is not None}
        return current, {int(r.doctorant_id) for r in rows if r.der}

    async def _sent(self, doctorants: set[int]) -> dict[int, set[str]]:
        A = alerte_duree_envoyee
        query = sa.select(A.c.doctorant_id, A.c.type_alerte).where(
            A.c.doctorant_id.in_(sorted(doctorants))
        )
        out: dict[int, set[str]] = {}
        async with self.batchdb.sessions() as s:
            for r in (await s.execute(query)).all():
                out.setdefault(int(r.doctorant_id), set()).add(str(r.type_alerte))
        return out

    async def _people(self, ids: set[int]) -> dict[int, Person]:
        query = sa.select(users.c.id, users.c.email, users.c.first_name, users.c.last_name).where(
            users.c.id.in_(sorted(ids))
        )
        async with self.userdb.sessions() as s:
            rows = (await s.execute(query)).all()
        return {int(r.id): Person(int(r.id), r.email, r.first_name, r.last_name) for r in rows}
