"""A fixed, hand-countable portal for the monthly report tests (month under test: 2025-02).

Each row says which month it counts in; the expected figures in
``test_report_statistics.py`` are counted from these comments by hand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tranche.doctoral.sources import Sources
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

FEB_END = datetime(2025, 3, 1)
ADMINS = ("direction.ed@univ-exemple.fr", "scolarite.ed@univ-exemple.fr")


def _user(uid: int, email: str, created: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "id": uid,
        "last_name": f"Nom{uid}",
        "first_name": f"Prénom{uid}",
        "email": email,
        "password": "$2a$10$" + "x" * 53,
        "phone_number": "0600000000",
        "adresse": "1 rue des Écoles",
        "ville": "Rabat",
        "pays": "Maroc",
        "enabled": kw.get("enabled", True),
        "created_at": created,
        "account_status": kw.get("status", "ACTIVE"),
        "failed_login_attempts": 0,
        "profile_complete": True,
    }


async def seed_users(sources: Sources, admins: tuple[str, ...] = ADMINS) -> None:
    role_ids = {"ROLE_DOCTORANT": 1, "ROLE_DIRECTEUR": 2, "ROLE_ADMIN": 3}
    rows = [
        # Admins: created long ago (count only in the "now" figures), enabled.
        *[_user(100 + n, email, datetime(2020, 1, 1)) for n, email in enumerate(admins)],
        # A disabled admin gets no mail and counts as not enabled.
        _user(
            110,
            "ancien.admin@univ-exemple.fr",
            datetime(2020, 1, 1),
            enabled=False,
            status="DISABLED",
        ),
        _user(1, "u1@etu.univ-exemple.fr", datetime(2025, 2, 2)),  # Feb, doctorant
        _user(
            2, "u2@etu.univ-exemple.fr", datetime(2025, 2, 15), enabled=False, status="DISABLED"
        ),  # Feb, doctorant
        _user(3, "u3@univ-exemple.fr", datetime(2025, 2, 28, 23, 59), status="LOCKED"),  # Feb
        _user(4, "u4@etu.univ-exemple.fr", datetime(2025, 1, 10)),  # Jan, doctorant
        _user(5, "u5@etu.univ-exemple.fr", datetime(2025, 3, 1)),  # March (excluded)
    ]
    links = [(100 + n, 3) for n in range(len(admins))] + [(110, 3)]
    links += [(1, 1), (2, 1), (3, 2), (4, 1), (5, 1)]
    async with sources.userdb.transaction() as s:
        await s.execute(sa.insert(U.roles), [{"id": i, "name": n} for n, i in role_ids.items()])
        await s.execute(sa.insert(U.users), rows)
        await s.execute(sa.insert(U.user_roles), [{"user_id": u, "role_id": r} for u, r in links])
        await s.execute(
            sa.insert(U.user_audits),
            [
                {"user_id": 3, "action": "ACCOUNT_LOCKED", "timestamp": datetime(2025, 2, 28)},
                {"user_id": 4, "action": "ACCOUNT_LOCKED", "timestamp": datetime(2025, 1, 20)},
                {"user_id": 1, "action": "LOGIN", "timestamp": datetime(2025, 2, 5)},
            ],
        )


def _enrollment(
    eid: int,
    doctorant: int,
    created: datetime,
    statut: str,
    *,
    kind: str = "PREMIERE_INSCRIPTION",
    validated: datetime | None = None,
    first: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": eid,
        "doctorant_id": doctorant,
        "directeur_these_id": 3,
        "campagne_id": 1,
        "sujet_these": f"Sujet {eid}",
        "type": kind,
        "annee_inscription": created.year,
        "statut": statut,
        "date_creation": created,
        "date_validation": validated,
        "date_premiere_inscription": first,
        "derogation": None,
        "bloque_re_inscription": False,
    }


def _these(eid: int, discipline: str, lab: str) -> dict[str, Any]:
    return {
        "inscription_id": eid,
        "titre_these": f"Thèse {eid}",
        "discipline": discipline,
        "laboratoire": lab,
        "etablissement_accueil": "Université",
        "cotutelle": False,
        "date_debut_prevue": datetime(2024, 10, 1).date(),
    }


def _days_before_feb_end(days: int) -> datetime:
    return FEB_END - timedelta(days=days)


async def seed_enrollments(sources: Sources) -> None:
    e = _enrollment
    rows = [
        # Created in February: E1..E4.
        e(
            1,
            1001,
            datetime(2025, 2, 3, 10),
            "VALIDE",
            validated=datetime(2025, 2, 13, 10),
            first=datetime(2025, 2, 3, 10),
        ),  # 10 days to validation
        e(2, 1002, datetime(2025, 2, 10), "EN_ATTENTE_ADMIN"),
        e(
            3,
            1003,
            datetime(2025, 2, 20),
            "VALIDE",
            kind="REINSCRIPTION",
            validated=datetime(2025, 2, 24),
            first=datetime(2024, 2, 20),
        ),  # 4 days
        e(4, 1004, datetime(2025, 2, 25), "REJETE"),  # rejected on 27 Feb, no infos_these
        # Created in January, validated on 1 Feb 00:00 (counts as validated in February).
        e(
            5,
            1005,
            datetime(2025, 1, 15),
            "VALIDE",
            validated=datetime(2025, 2, 1),
            first=datetime(2025, 2, 1),
        ),  # 17 days
        e(6, 1006, datetime(2025, 3, 1), "BROUILLON"),  # March: excluded
        e(7, 1007, datetime(2025, 1, 31, 23, 59, 59), "REJETE"),  # January, rejected 31 Jan
        # Duration bands at the end of February (days / 365.25; 2.5 y = 913.1 d,
        # 5.5 y = 2008.9 d, 6 y = 2191.5 d), all created long ago:
        e(11, 2001, datetime(2020, 1, 1), "VALIDE", first=_days_before_feb_end(913)),  # none
        e(12, 2002, datetime(2020, 1, 1), "VALIDE", first=_days_before_feb_end(914)),  # near 3
        e(13, 2003, datetime(2020, 1, 1), "VALIDE", first=_days_before_feb_end(2009)),  # near 6
        e(14, 2004, datetime(2020, 1, 1), "VALIDE", first=_days_before_feb_end(2008)),  # near 3
        e(15, 2005, datetime(2018, 1, 1), "VALIDE", first=_days_before_feb_end(2192)),  # over 6
        e(16, 2006, datetime(2018, 1, 1), "VALIDE", first=_days_before_feb_end(2191)),  # near 6
        # Re-enrolled: two validated rows, one doctorant, over 6 years.
        e(17, 2007, datetime(2018, 1, 1), "VALIDE", first=_days_before_feb_end(2292)),
        e(
            18,
            2007,
            datetime(2019, 1, 1),
            "VALIDE",
            kind="REINSCRIPTION",
            first=_days_before_feb_end(2292),
        ),
        # Not validated: never counted in the bands.
        e(19, 2008, datetime(2018, 1, 1), "EN_ATTENTE_ADMIN", first=_days_before_feb_end(3000)),
    ]
    infos = [
        _these(1, "Informatique", "LRIT"),
        _these(2, "Informatique", "LIMIARF"),
        _these(3, "Physique", "LPM"),
        _these(5, "Chimie", "LCM"),
        _these(6, "Chimie", "LCM"),
    ]
    validations = [
        {
            "inscription_id": 4,
            "validateur_id": 0,
            "type_validateur": "ADMINISTRATION",
            "statut": "REJETE",
            "date_validation": datetime(2025, 2, 27),
            "date_creation": datetime(2025, 2, 25),
        },
        {
            "inscription_id": 7,
            "validateur_id": 3,
            "type_validateur": "DIRECTEUR_THESE",
            "statut": "REJETE",
            "date_validation": datetime(2025, 1, 31, 23, 59, 59),
            "date_creation": datetime(2025, 1, 31),
        },
        {
            "inscription_id": 1,
            "validateur_id": 0,
            "type_validateur": "ADMINISTRATION",
            "statut": "APPROUVE",
            "date_validation": datetime(2025, 2, 13, 10),
            "date_creation": datetime(2025, 2, 3, 10),
        },
    ]
    async with sources.inscription_db.transaction() as s:
        await s.execute(
            sa.insert(I.campagnes).values(
                id=1,
                libelle="Campagne 2024-2025",
                type="INSCRIPTION",
                date_debut=datetime(2024, 9, 1).date(),
                date_fin=datetime(2025, 6, 30).date(),
                active=True,
                annee_universitaire=2024,
            )
        )
        await s.execute(sa.insert(I.inscriptions), rows)
        await s.execute(sa.insert(I.infos_these), infos)
        await s.execute(sa.insert(I.validations_inscription), validations)


async def seed_defenses(sources: Sources) -> None:
    requests = [
        (1, datetime(2025, 1, 5)),  # January
        (2, datetime(2024, 12, 1)),
        (3, datetime(2025, 2, 10)),  # February
        (4, datetime(2025, 2, 12)),  # February
        (5, datetime(2024, 11, 1)),
        (6, datetime(2024, 10, 1)),
    ]
    async with sources.defensedb.transaction() as s:
        await s.execute(
            sa.insert(D.defense_requests),
            [
                {"id": i, "doctorant_id": 2000 + i, "submission_date": d, "status": "SUBMITTED"}
                for i, d in requests
            ],
        )
        await s.execute(
            sa.insert(D.autorisations_soutenance),
            [
                {
                    "defense_request_id": 1,
                    "statut": "AUTORISE",
                    "date_autorisation": datetime(2025, 1, 20),
                },
                {
                    "defense_request_id": 3,
                    "statut": "AUTORISE",
                    "date_autorisation": datetime(2025, 2, 25),
                },
                {
                    "defense_request_id": 4,
                    "statut": "REFUSE",
                    "date_autorisation": datetime(2025, 2, 20),
                },
            ],
        )
        await s.execute(
            sa.insert(D.defenses),
            [
                # Held in February: 40 days and 89 days after the request.
                {
                    "defense_request_id": 1,
                    "defense_date": datetime(2025, 2, 14),
                    "status": "COMPLETED",
                    "mention": "TRES_HONORABLE",
                    "publication_recommended": True,
                },
                {
                    "defense_request_id": 2,
                    "defense_date": datetime(2025, 2, 28),
                    "status": "COMPLETED",
                    "mention": "HONORABLE",
                    "publication_recommended": False,
                },
                # Scheduled (not held) in February; held in March.
                {
                    "defense_request_id": 5,
                    "defense_date": datetime(2025, 2, 20),
                    "status": "SCHEDULED",
                    "mention": None,
                    "publication_recommended": False,
                },
                {
                    "defense_request_id": 6,
                    "defense_date": datetime(2025, 3, 1),
                    "status": "COMPLETED",
                    "mention": "PASSABLE",
                    "publication_recommended": False,
                },
            ],
        )


async def seed_notifications(sources: Sources) -> None:
    feb = datetime(2025, 2, 10)
    spec = [
        *[("SENT", "RAPPEL_ECHEANCE", feb)] * 3,
        *[("SENT", "INSCRIPTION_VALIDEE_ADMIN", feb)] * 2,
        *[("FAILED", "ALERTE_SYSTEME", feb)] * 2,
        ("PENDING", "NOTIFICATION_GENERALE", feb),
        ("RETRYING", "NOTIFICATION_GENERALE", datetime(2025, 2, 28, 23, 59)),
        ("SENT", "RAPPEL_ECHEANCE", datetime(2025, 1, 3)),  # January
        ("FAILED", "ALERTE_SYSTEME", datetime(2025, 3, 1)),  # March
    ]
    async with sources.notification_db.transaction() as s:
        await s.execute(
            sa.insert(N.notifications),
            [
                {
                    "type": t,
                    "destinataire": "x@univ-exemple.fr",
                    "sujet": "s",
                    "statut": st,
                    "priorite": "NORMALE",
                    "date_creation": at,
                }
                for st, t, at in spec
            ],
        )


async def seed_all(sources: Sources, admins: tuple[str, ...] = ADMINS) -> None:
    await seed_users(sources, admins)
    await seed_enrollments(sources)
    await seed_defenses(sources)
    await seed_notifications(sources)
