"""dureeDoctoratAlertJob's reader: validated enrollments with what deciding needs, per page.

The rows live in three databases that cannot be joined in SQL, so each page of
``inscriptions`` (keyset by id) is completed in memory with:

* inscription_db: per doctorant, the latest validated enrollment, whether any
  of their enrollments holds a derogation (the PED marks the first one), and all
  their enrollments' ids (the chunk re-reads the owner's alerts by them);
* inscription_db: the owner's ``alertes_duree`` types already recorded for any of the
  doctorant's enrollments;
* batchdb: the alert types already sent to each doctorant (``alerte_duree_envoyee``);
* defensedb: whether the doctorant's defense is authorised, scheduled or completed
  (``defense_requests.doctorant_id`` is the only link, reference §4);
* userdb: the doctorant's and the thesis director's name and email.

Six queries per page instead of six per enrollment. The paging is the engine's
one keyset reader (:class:`~tranche.batch.readers.KeysetReader`, with
:class:`EnrollmentLookups` as its ``map_page``); the position is the id of the
last enrollment handed out, so a restart resumes right after the last committed
chunk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import Grouping

from tranche.batch.readers import KeysetReader
from tranche.core.db import Database
from tranche.doctoral.durations import AlertType, alert_type
from tranche.doctoral.models import alerte_duree_envoyee
from tranche.doctoral.tables.defensedb import autorisations_soutenance, defense_requests, defenses
from tranche.doctoral.tables.inscription_db import alertes_duree, inscriptions
from tranche.doctoral.tables.userdb import users

__all__ = [
    "DefenseState",
    "Enrollment",
    "EnrollmentLookups",
    "Person",
    "defense_states",
    "enrollment_reader",
    "ids_in",
    "recorded_alerts",
    "recorded_for",
]

INS = inscriptions


class DefenseState(StrEnum):
    """How far the doctorant's defense went, strongest first (None: not yet authorised)."""

    COMPLETED = "COMPLETED"
    SCHEDULED = "SCHEDULED"
    AUTHORIZED = "AUTHORIZED"


_STRENGTH = {DefenseState.COMPLETED: 3, DefenseState.SCHEDULED: 2, DefenseState.AUTHORIZED: 1}


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
    already_sent: frozenset[AlertType]
    owner_recorded: frozenset[AlertType]
    #: The ids of all the doctorant's enrollments, as the page read them: the chunk's
    #: re-read of the owner's alerts looks them up by ``alertes_duree.inscription_id``.
    enrollment_ids: tuple[int, ...]
    defense: DefenseState | None
    doctorant: Person | None
    directeur: Person | None


class _IntList(sa.types.TypeDecorator[list[int]]):
    """A list of integers rendered as ``1,2,3`` into the SQL (``NULL`` when empty)."""

    impl = sa.types.String
    cache_ok = True

    def literal_processor(self, dialect: sa.Dialect) -> Callable[[list[int]], str]:
        # int() of each value: only digits reach the SQL, whatever the caller passed.
        def render(values: list[int]) -> str:
            return ",".join([str(int(v)) for v in values]) or "NULL"

        return render


def ids_in(column: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """``column IN (:ids)`` for a list of integer ids given at execution.

    The lookups' statements are built once (a statement object keeps its cache key; building
    one with 500 literal ids coerced each into a bound parameter cost more than running it),
    and the ids are rendered into the SQL as integer literals at execution, not as 500
    parameters each with a name and the driver's escaping — and in one join, not through
    SQLAlchemy's per-value literal rendering of an expanding parameter (~1 µs per id).
    An empty list matches nothing (``IN (NULL)``).
    """
    ids = sa.bindparam("ids", type_=_IntList(), literal_execute=True)
    return column.op("IN", is_comparison=True)(Grouping(ids))


#: Every enrollment of the page's doctorants: the latest validated one, any derogation and
#: all their ids are worked out from these rows.
_FACTS = sa.select(INS.c.doctorant_id, INS.c.id, INS.c.statut, INS.c.derogation).where(
    ids_in(INS.c.doctorant_id)
)
_SENT = sa.select(alerte_duree_envoyee.c.doctorant_id, alerte_duree_envoyee.c.type_alerte).where(
    ids_in(alerte_duree_envoyee.c.doctorant_id)
)
_PEOPLE = sa.select(users.c.id, users.c.email, users.c.first_name, users.c.last_name).where(
    ids_in(users.c.id)
)
#: The owner's alerts of known enrollments, through ``alertes_duree.inscription_id``'s index
#: (``inscriptions.doctorant_id`` has none: a query by doctorant scans the enrollments).
_RECORDED_BY_ENROLLMENT = sa.select(alertes_duree.c.inscription_id, alertes_duree.c.type).where(
    ids_in(alertes_duree.c.inscription_id)
)
#: From the doctorants' enrollments to their alerts, in that order on MariaDB: the owner's
#: schema indexes ``alertes_duree.inscription_id`` but not ``inscriptions.doctorant_id``, and
#: with statistics of a table that grew during the run (the first run fills it) the
#: optimizer chose to scan ``alertes_duree`` whole for every chunk: 4-7 ms per re-read at
#: 3 000 alerts, against about 1 ms scanning the enrollments and looking the alerts up.
_RECORDED = (
    sa.select(INS.c.doctorant_id, alertes_duree.c.type)
    .select_from(INS)
    .join(alertes_duree, alertes_duree.c.inscription_id == INS.c.id)
    .where(ids_in(INS.c.doctorant_id))
    .prefix_with("STRAIGHT_JOIN", dialect="mysql")
    .prefix_with("STRAIGHT_JOIN", dialect="mariadb")
)
_DEFENSES = (
    sa.select(
        defense_requests.c.doctorant_id,
        defense_requests.c.status,
        defenses.c.status.label("defense"),
        autorisations_soutenance.c.statut,
    )
    .outerjoin(defenses, defenses.c.defense_request_id == defense_requests.c.id)
    .outerjoin(
        autorisations_soutenance,
        autorisations_soutenance.c.defense_request_id == defense_requests.c.id,
    )
    .where(ids_in(defense_requests.c.doctorant_id))
)


class EnrollmentLookups:
    """A page of validated enrollments → :class:`Enrollment` items, with five bulk lookups.

    The ``map_page`` of the step's :class:`~tranche.batch.readers.KeysetReader`: the
    lookups hit four databases and depend on nothing but the page, so they run side by
    side (a page costs the slowest lookup, not their sum). A failure cancels the others
    (TaskGroup) and the reader stays where it was.
    """

    def __init__(
        self,
        inscription_db: Database,
        batchdb: Database,
        userdb: Database,
        defensedb: Database,
        run_date: date,
    ) -> None:
        self.inscription_db, self.batchdb, self.userdb = inscription_db, batchdb, userdb
        self.defensedb = defensedb
        self.run_date = run_date

    async def __call__(self, rows: Sequence[RowMapping]) -> list[Enrollment | None]:
        doctorants = {int(r["doctorant_id"]) for r in rows}
        directors = {int(r["directeur_these_id"]) for r in rows}
        async with asyncio.TaskGroup() as lookups:
            facts = lookups.create_task(self._doctorant_facts(doctorants))
            sent_task = lookups.create_task(self._sent(doctorants))
            recorded_task = lookups.create_task(self._recorded(doctorants))
            defended_task = lookups.create_task(defense_states(self.defensedb, doctorants))
            people_task = lookups.create_task(self._people(doctorants | directors))
        current, derogated, enrollments = facts.result()
        sent, recorded = sent_task.result(), recorded_task.result()
        defended, people = defended_task.result(), people_task.result()
        items: list[Enrollment | None] = []
        for r in rows:
            doc, director, first = (
                int(r["doctorant_id"]),
                int(r["directeur_these_id"]),
                r["date_premiere_inscription"],
            )
            items.append(
                Enrollment(
                    inscription_id=int(r["id"]),
                    doctorant_id=doc,
                    directeur_id=director,
                    date_premiere_inscription=first.date(),
                    bloque_re_inscription=bool(r["bloque_re_inscription"]),
                    run_date=self.run_date,
                    is_current=current.get(doc) == int(r["id"]),
                    derogation=doc in derogated,
                    already_sent=frozenset(sent.get(doc, ())),
                    owner_recorded=frozenset(recorded.get(doc, ())),
                    enrollment_ids=enrollments.get(doc, (int(r["id"]),)),
                    defense=defended.get(doc),
                    doctorant=people.get(doc),
                    directeur=people.get(director),
                )
            )
        return items

    async def _doctorant_facts(
        self, doctorants: set[int]
    ) -> tuple[dict[int, int], set[int], dict[int, tuple[int, ...]]]:
        """Per doctorant: the latest validated enrollment, a derogation on any, all ids."""
        async with self.inscription_db.sessions() as s:
            rows = (await s.execute(_FACTS, {"ids": sorted(doctorants)})).all()
        current: dict[int, int] = {}
        derogated: set[int] = set()
        ids: dict[int, list[int]] = {}
        for doc_id, enrollment, statut, derogation in rows:
            doc, enrollment = int(doc_id), int(enrollment)
            ids.setdefault(doc, []).append(enrollment)
            if statut == "VALIDE" and enrollment > current.get(doc, enrollment - 1):
                current[doc] = enrollment
            if derogation:
                derogated.add(doc)
        return current, derogated, {doc: tuple(sorted(v)) for doc, v in ids.items()}

    async def _sent(self, doctorants: set[int]) -> dict[int, set[AlertType]]:
        out: dict[int, set[AlertType]] = {}
        async with self.batchdb.sessions() as s:
            for r in (await s.execute(_SENT, {"ids": sorted(doctorants)})).all():
                kind = alert_type(str(r.type_alerte))
                if kind is not None:
                    out.setdefault(int(r.doctorant_id), set()).add(kind)
        return out

    async def _recorded(self, doctorants: set[int]) -> dict[int, set[AlertType]]:
        async with self.inscription_db.sessions() as s:
            return await recorded_alerts(s, doctorants)

    async def _people(self, ids: set[int]) -> dict[int, Person]:
        async with self.userdb.sessions() as s:
            rows = (await s.execute(_PEOPLE, {"ids": sorted(ids)})).all()
        return {int(r.id): Person(int(r.id), r.email, r.first_name, r.last_name) for r in rows}


def enrollment_reader(
    inscription_db: Database,
    batchdb: Database,
    userdb: Database,
    defensedb: Database,
    run_date: date,
    page_size: int,
) -> KeysetReader[Enrollment]:
    """Validated enrollments with a first-enrollment date, by id, completed page by page."""
    query = sa.select(
        INS.c.id,
        INS.c.doctorant_id,
        INS.c.directeur_these_id,
        INS.c.date_premiere_inscription,
        INS.c.bloque_re_inscription,
    ).where(INS.c.statut == "VALIDE", INS.c.date_premiere_inscription.is_not(None))
    lookups = EnrollmentLookups(inscription_db, batchdb, userdb, defensedb, run_date)
    return KeysetReader(
        inscription_db.engine, query, [INS.c.id], page_size=page_size, map_page=lookups
    )


async def recorded_alerts(session: AsyncSession, doctorants: set[int]) -> dict[int, set[AlertType]]:
    """The owner's ``alertes_duree`` types per doctorant, over all their enrollments."""
    out: dict[int, set[AlertType]] = {}
    result = await session.execute(_RECORDED, {"ids": sorted(doctorants)})
    for doctorant_id, kind_name in result.all():
        kind = alert_type(str(kind_name))
        if kind is not None:
            out.setdefault(int(doctorant_id), set()).add(kind)
    return out


async def recorded_for(session: AsyncSession, owners: dict[int, int]) -> dict[int, set[AlertType]]:
    """The owner's ``alertes_duree`` types per doctorant, for ``owners``' enrollments
    (inscription id → doctorant id), read by enrollment id: the table's index, no scan."""
    out: dict[int, set[AlertType]] = {}
    result = await session.execute(_RECORDED_BY_ENROLLMENT, {"ids": sorted(owners)})
    for inscription_id, kind_name in result.all():
        kind = alert_type(str(kind_name))
        if kind is not None:
            out.setdefault(owners[int(inscription_id)], set()).add(kind)
    return out


def _state(
    request_status: str | None, defense: str | None, autorisation: str | None
) -> DefenseState | None:
    if request_status == "COMPLETED" or defense == "COMPLETED":
        return DefenseState.COMPLETED
    if defense == "CANCELLED" or request_status == "REJECTED":
        return None  # a cancelled defense (or a refused request) is no defense
    if defense in ("SCHEDULED", "IN_PROGRESS", "POSTPONED") or request_status == "SCHEDULED":
        return DefenseState.SCHEDULED
    if request_status == "AUTHORIZED" or autorisation == "AUTORISE":
        return DefenseState.AUTHORIZED
    return None


async def defense_states(defensedb: Database, doctorants: set[int]) -> dict[int, DefenseState]:
    """Per doctorant, the strongest state among their defense requests (absent: none)."""
    async with defensedb.sessions() as s:
        rows = (await s.execute(_DEFENSES, {"ids": sorted(doctorants)})).all()
    out: dict[int, DefenseState] = {}
    for r in rows:
        state = _state(r.status, r.defense, r.statut)
        if state is None or r.doctorant_id is None:
            continue
        doc = int(r.doctorant_id)
        known = out.get(doc)
        if known is None or _STRENGTH[state] > _STRENGTH[known]:
            out[doc] = state
    return out
