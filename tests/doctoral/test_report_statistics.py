"""Each monthly-report statistic equals the figure counted by hand from ``report_data``.

February 2025 is the month under test, January its previous month; the rows on
the months' edges (1 Feb 00:00 in, 1 Mar 00:00 out, 31 Jan 23:59:59 in January)
make an off-by-one bound fail. An empty portal gives zeros everywhere.
"""

from __future__ import annotations

from typing import Any

from tests.doctoral.harness import Databases
from tests.doctoral.report_fixtures import FreshPortal, fresh_portal, seeded
from tranche.doctoral.reports import statistics as S
from tranche.doctoral.reports.period import Month
from tranche.doctoral.sources import Sources

__all__ = ["fresh_portal", "seeded"]

FEB, JAN = Month(2025, 2), Month(2025, 1)


async def _all(dbs: Databases, month: Month) -> dict[str, dict[str, Any]]:
    sources = Sources.open(dbs.urls, dbs.settings().pool())
    try:
        return {
            "enrollments": await S.enrollment_stats(sources.inscription_db, month),
            "defenses": await S.defense_stats(sources.defensedb, month),
            "notifications": await S.notification_stats(sources.notification_db, month),
            "users": await S.user_stats(sources.userdb, month),
            "durations": await S.duration_stats(sources.inscription_db, month),
        }
    finally:
        await sources.close()


async def test_february_figures(seeded: Databases) -> None:
    got = await _all(seeded, FEB)
    assert got["enrollments"] == {
        "created": 4,
        "firstEnrollments": 3,
        "reEnrollments": 1,
        "byStatus": {
            "BROUILLON": 0,
            "SOUMIS": 0,
            "EN_ATTENTE_DIRECTEUR": 0,
            "APPROUVE_DIRECTEUR": 0,
            "EN_ATTENTE_ADMIN": 1,
            "VALIDE": 2,
            "REJETE": 1,
        },
        "byDiscipline": {"Informatique": 2, "Non renseigné": 1, "Physique": 1},
        "byLaboratory": {"LIMIARF": 1, "LPM": 1, "LRIT": 1, "Non renseigné": 1},
        "validated": 3,
        "medianDaysToValidation": 10.0,
        "rejected": 1,
    }
    assert list(got["enrollments"]["byDiscipline"]) == ["Informatique", "Non renseigné", "Physique"]
    assert got["defenses"] == {
        "requested": 2,
        "authorised": 1,
        "held": 2,
        "byMention": {
            "TRES_HONORABLE_AVEC_FELICITATIONS": 0,
            "TRES_HONORABLE": 1,
            "HONORABLE": 1,
            "PASSABLE": 0,
        },
        "medianDaysRequestToDefense": 64.5,
    }
    assert got["notifications"] == {
        "total": 9,
        "sent": 5,
        "failed": 2,
        "pending": 2,
        "byStatus": {"PENDING": 1, "SENT": 5, "FAILED": 2, "RETRYING": 1},
        "byType": {
            "RAPPEL_ECHEANCE": 3,
            "ALERTE_SYSTEME": 2,
            "INSCRIPTION_VALIDEE_ADMIN": 2,
            "NOTIFICATION_GENERALE": 2,
        },
        "failureRatePercent": 28.57,
    }
    assert got["users"] == {
        "newAccounts": 3,
        "newByRole": {
            "ROLE_DOCTORANT": 2,
            "ROLE_DIRECTEUR": 1,
            "ROLE_ADMIN": 0,
            "ROLE_DOCTORANT_ACTIF": 0,
        },
        "lockedInMonth": 1,
        "enabledNow": 6,
        "lockedNow": 1,
        "byRoleNow": {
            "ROLE_DOCTORANT": 4,
            "ROLE_DIRECTEUR": 1,
            "ROLE_ADMIN": 3,
            "ROLE_DOCTORANT_ACTIF": 0,
        },
    }
    assert got["durations"] == {
        "doctorantsInProgress": 10,
        "near3Years": 2,
        "near6Years": 2,
        "over6Years": 2,
    }


async def test_january_figures(seeded: Databases) -> None:
    got = await _all(seeded, JAN)
    e = got["enrollments"]
    assert (e["created"], e["firstEnrollments"], e["reEnrollments"]) == (2, 2, 0)
    assert (e["byStatus"]["VALIDE"], e["byStatus"]["REJETE"]) == (1, 1)
    assert e["byDiscipline"] == {"Chimie": 1, "Non renseigné": 1}
    assert (e["validated"], e["medianDaysToValidation"], e["rejected"]) == (0, None, 1)
    d = got["defenses"]
    assert (d["requested"], d["authorised"], d["held"]) == (1, 1, 0)
    assert d["medianDaysRequestToDefense"] is None
    n = got["notifications"]
    assert (n["total"], n["sent"], n["failed"], n["failureRatePercent"]) == (1, 1, 0, 0.0)
    u = got["users"]
    assert (u["newAccounts"], u["lockedInMonth"], u["newByRole"]["ROLE_DOCTORANT"]) == (1, 1, 1)
    # 28 days earlier every doctorant is 28 days younger: two move down a band.
    assert got["durations"] == {
        "doctorantsInProgress": 8,
        "near3Years": 2,
        "near6Years": 2,
        "over6Years": 1,
    }


async def test_empty_portal_gives_zeros(fresh_portal: FreshPortal) -> None:
    got = await _all(await fresh_portal(), FEB)
    assert got["enrollments"]["created"] == 0
    assert set(got["enrollments"]["byStatus"].values()) == {0}
    assert got["enrollments"]["byDiscipline"] == {}
    assert got["enrollments"]["medianDaysToValidation"] is None
    assert got["defenses"]["held"] == 0 and set(got["defenses"]["byMention"].values()) == {0}
    assert got["notifications"]["failureRatePercent"] == 0.0
    assert got["notifications"]["total"] == 0
    assert got["users"]["newAccounts"] == 0 and got["users"]["enabledNow"] == 0
    assert got["durations"] == {
        "doctorantsInProgress": 0,
        "near3Years": 0,
        "near6Years": 0,
        "over6Years": 0,
    }
