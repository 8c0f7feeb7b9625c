"""The monthly report's statistics, one function per category, over the owners' real schemas.

Every function takes one owner's database and a :class:`Month` and returns a
JSON-ready ``dict`` (it goes into the job's execution context); a month without
data gives zeros, never an error. Counts are ``GROUP BY`` queries on the
owner's columns (reference §2-5); medians need the individual delays, so those
rows are read and the median taken in Python — exact on every engine, where
SQL medians are not portable. Definitions (also printed in the PDF's notes):

* **enrollments**: dossiers *created* in the month (``inscriptions.date_creation``)
  split by type, current ``statut``, discipline and laboratory (``infos_these``,
  « Non renseigné » when the dossier has none); *validated* in the month
  (``statut = VALIDE``, ``date_validation`` in the month) with the median days
  from ``date_creation`` to ``date_validation`` (the owner keeps no submission
  date); *rejected* in the month: enrollments whose REJETE row in
  ``validations_inscription`` is dated in the month (the owner keeps no rejection
  date on the enrollment itself).
* **defenses**: requests *submitted* (``defense_requests.submission_date``),
  *authorised* (``autorisations_soutenance`` AUTORISE, ``date_autorisation``),
  *held* (``defenses`` COMPLETED, ``defense_date``) in the month, held ones by
  mention, median days from the request's submission to the defence.
* **notifications**: created in the month (``date_creation``) by status and type;
  pending = PENDING + RETRYING; failure rate = FAILED / (SENT + FAILED) in percent
  (undecided ones are left out).
* **users**: accounts created in the month, in total and by role; accounts locked
  in the month (``user_audits`` ACCOUNT_LOCKED); and, as of generation (userdb
  keeps no history of them), enabled and locked accounts and users per role.
* **durations**: doctorants with a validated enrollment started before the end of
  the month, by years since ``date_premiere_inscription`` at the month's end
  (whole days / 365.25, the owner's rule): ≥ 2.5 approaching 3 years, ≥ 5.5
  approaching 6 years, ≥ 6.0 over 6 years — each doctorant in one band, the
  highest reached.
"""

from __future__ import annotations

import statistics as pystats
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tranche.core.db import Database
from tranche.doctoral.reports.period import Month
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

__all__ = [
    "CATEGORIES",
    "UNKNOWN",
    "YEARS_3",
    "YEARS_6",
    "YEARS_MAX",
    "defense_stats",
    "duration_stats",
    "enrollment_stats",
    "median_days",
    "notification_stats",
    "user_stats",
]

#: Label of an enrollment without ``infos_these`` (discipline / laboratory unknown).
UNKNOWN = "Non renseigné"
#: The owner's duration thresholds, in years (``alertes.duree.*`` defaults).
YEARS_3, YEARS_6, YEARS_MAX = 2.5, 5.5, 6.0
#: Execution-context keys of the statistics, in report order.
CATEGORIES = ("enrollments", "defenses", "notifications", "users", "durations")


def _in(column: Any, month: Month) -> Any:
    return sa.and_(column >= month.start, column < month.end)


def median_days(pairs: Iterable[tuple[datetime | None, datetime | None]]) -> float | None:
    """Median of ``end - start`` in days (1 decimal) over the pairs with both ends; None if none."""
    days = [(b - a).total_seconds() / 86400 for a, b in pairs if a is not None and b is not None]
    return round(pystats.median(days), 1) if days else None


def _zero_filled(keys: Sequence[str], found: dict[str, int]) -> dict[str, int]:
    out = {k: int(found.get(k, 0)) for k in keys}
    out.update({k: int(v) for k, v in found.items() if k not in out})
    return out


def _sorted_desc(found: dict[str, int]) -> dict[str, int]:
    return dict(sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))


async def enrollment_stats(db: Database, month: Month) -> dict[str, Any]:
    ins, these = I.inscriptions, I.infos_these
    grouped = (
        sa.select(
            ins.c.type,
            ins.c.statut,
            these.c.discipline,
            these.c.laboratoire,
            sa.func.count().label("n"),
        )
        .select_from(ins.outerjoin(these, these.c.inscription_id == ins.c.id))
        .where(_in(ins.c.date_creation, month))
        .group_by(ins.c.type, ins.c.statut, these.c.discipline, these.c.laboratoire)
    )
    validated = sa.select(ins.c.date_creation, ins.c.date_validation).where(
        ins.c.statut == "VALIDE", _in(ins.c.date_validation, month)
    )
    v = I.validations_inscription
    rejected = sa.select(sa.func.count(sa.distinct(v.c.inscription_id))).where(
        v.c.statut == "REJETE", _in(v.c.date_validation, month)
    )
    by_type: dict[str, int] = {}
    by_status: dict[str, int] = {}
    by_discipline: dict[str, int] = {}
    by_lab: dict[str, int] = {}
    async with db.sessions() as s:
        for row in (await s.execute(grouped)).all():
            n = int(row.n)
            by_type[row.type] = by_type.get(row.type, 0) + n
            by_status[row.statut] = by_status.get(row.statut, 0) + n
            discipline, lab = row.discipline or UNKNOWN, row.laboratoire or UNKNOWN
            by_discipline[discipline] = by_discipline.get(discipline, 0) + n
            by_lab[lab] = by_lab.get(lab, 0) + n
        pairs = [(r.date_creation, r.date_validation) for r in (await s.execute(validated)).all()]
        rejections = int((await s.execute(rejected)).scalar_one() or 0)
    return {
        "created": sum(by_type.values()),
        "firstEnrollments": by_type.get("PREMIERE_INSCRIPTION", 0),
        "reEnrollments": by_type.get("REINSCRIPTION", 0),
        "byStatus": _zero_filled(I.INSCRIPTION_STATUTS, by_status),
        "byDiscipline": _sorted_desc(by_discipline),
        "byLaboratory": _sorted_desc(by_lab),
        "validated": len(pairs),
        "medianDaysToValidation": median_days(pairs),
        "rejected": rejections,
    }


async def defense_stats(db: Database, month: Month) -> dict[str, Any]:
    req, auth, dfn = D.defense_requests, D.autorisations_soutenance, D.defenses
    requested = sa.select(sa.func.count()).where(_in(req.c.submission_date, month))
    authorised = sa.select(sa.func.count()).where(
        auth.c.statut == "AUTORISE", _in(auth.c.date_autorisation, month)
    )
    held = (
        sa.select(dfn.c.mention, dfn.c.defense_date, req.c.submission_date)
        .select_from(dfn.outerjoin(req, req.c.id == dfn.c.defense_request_id))
        .where(dfn.c.status == "COMPLETED", _in(dfn.c.defense_date, month))
    )
    async with db.sessions() as s:
        n_requested = int((await s.execute(requested.select_from(req))).scalar_one())
        n_authorised = int((await s.execute(authorised.select_from(auth))).scalar_one())
        rows = (await s.execute(held)).all()
    mentions: dict[str, int] = {}
    for r in rows:
        key = r.mention or UNKNOWN
        mentions[key] = mentions.get(key, 0) + 1
    return {
        "requested": n_requested,
        "authorised": n_authorised,
        "held": len(rows),
        "byMention": _zero_filled(D.MENTIONS, mentions),
        "medianDaysRequestToDefense": median_days(
            (r.submission_date, r.defense_date) for r in rows
        ),
    }


async def notification_stats(db: Database, month: Month) -> dict[str, Any]:
    n = N.notifications
    query = (
        sa.select(n.c.statut, n.c.type, sa.func.count().label("n"))
        .where(_in(n.c.date_creation, month))
        .group_by(n.c.statut, n.c.type)
    )
    by_status: dict[str, int] = {}
    by_type: dict[str, int] = {}
    async with db.sessions() as s:
        for row in (await s.execute(query)).all():
            by_status[row.statut] = by_status.get(row.statut, 0) + int(row.n)
            by_type[row.type] = by_type.get(row.type, 0) + int(row.n)
    sent, failed = by_status.get("SENT", 0), by_status.get("FAILED", 0)
    decided = sent + failed
    return {
        "total": sum(by_status.values()),
        "sent": sent,
        "failed": failed,
        "pending": by_status.get("PENDING", 0) + by_status.get("RETRYING", 0),
        "byStatus": _zero_filled(N.STATUTS, by_status),
        "byType": _sorted_desc(by_type),
        "failureRatePercent": round(100.0 * failed / decided, 2) if decided else 0.0,
    }


async def user_stats(db: Database, month: Month) -> dict[str, Any]:
    u, ur, r, audits = U.users, U.user_roles, U.roles, U.user_audits
    created = sa.select(sa.func.count()).select_from(u).where(_in(u.c.created_at, month))
    role_join = u.join(ur, ur.c.user_id == u.c.id).join(r, r.c.id == ur.c.role_id)
    new_by_role = (
        sa.select(r.c.name, sa.func.count().label("n"))
        .select_from(role_join)
        .where(_in(u.c.created_at, month))
        .group_by(r.c.name)
    )
    all_by_role = (
        sa.select(r.c.name, sa.func.count().label("n")).select_from(role_join).group_by(r.c.name)
    )
    enabled = sa.select(sa.func.count()).select_from(u).where(u.c.enabled == sa.true())
    locked = sa.select(sa.func.count()).select_from(u).where(u.c.account_status == "LOCKED")
    locked_in_month = (
        sa.select(sa.func.count())
        .select_from(audits)
        .where(audits.c.action == "ACCOUNT_LOCKED", _in(audits.c.timestamp, month))
    )
    async with db.sessions() as s:
        n_created = int((await s.execute(created)).scalar_one())
        new_roles = {str(x.name): int(x.n) for x in (await s.execute(new_by_role)).all()}
        roles_now = {str(x.name): int(x.n) for x in (await s.execute(all_by_role)).all()}
        n_enabled = int((await s.execute(enabled)).scalar_one())
        n_locked = int((await s.execute(locked)).scalar_one())
        n_locked_month = int((await s.execute(locked_in_month)).scalar_one())
    return {
        "newAccounts": n_created,
        "newByRole": _zero_filled(U.ROLE_NAMES, new_roles),
        "lockedInMonth": n_locked_month,
        "enabledNow": n_enabled,
        "lockedNow": n_locked,
        "byRoleNow": _zero_filled(U.ROLE_NAMES, roles_now),
    }


def _band(years: float) -> str | None:
    if years >= YEARS_MAX:
        return "over6Years"
    if years >= YEARS_6:
        return "near6Years"
    if years >= YEARS_3:
        return "near3Years"
    return None


async def duration_stats(db: Database, month: Month) -> dict[str, Any]:
    ins = I.inscriptions
    first = sa.func.min(ins.c.date_premiere_inscription).label("first")
    query = (
        sa.select(ins.c.doctorant_id, first)
        .where(
            ins.c.statut == "VALIDE",
            ins.c.date_premiere_inscription.is_not(None),
            ins.c.date_premiere_inscription < month.end,
        )
        .group_by(ins.c.doctorant_id)
    )
    bands = {"near3Years": 0, "near6Years": 0, "over6Years": 0}
    async with db.sessions() as s:
        rows = (await s.execute(query)).all()
    for row in rows:
        days = (month.end - row.first).days
        band = _band(days / 365.25)
        if band is not None:
            bands[band] += 1
    return {"doctorantsInProgress": len(rows), **bands}
