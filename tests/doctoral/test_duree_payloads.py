"""The alert events written straight to JSON are the events ``notification()`` builds.

:func:`~tranche.doctoral.jobs.duree_messages.payloads` skips ``notification(…).to_json()``
for speed; every event it writes must still be one notification-service accepts and
``notification()`` would have built from the same fields, key for key and in order, for
both rules, every alert type, with and without derogation, a missing doctorant, a blank
or very long name, and an address the consumer refuses (left out).
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from tranche.doctoral.durations import AlertRule, AlertType, OwnerThresholds, Thresholds
from tranche.doctoral.jobs.duree_alert import decide
from tranche.doctoral.jobs.duree_messages import payloads
from tranche.doctoral.jobs.duree_reader import Enrollment, Person
from tranche.doctoral.notifications import notification
from tranche.doctoral.tables.notification_db import PRIORITES, TYPES

RUN = date(2026, 12, 4)
PEOPLE: list[Person | None] = [
    Person(1, "jean.dupont@univ-exemple.fr", "Jean", "Dupont"),
    Person(2, "sans-arobase", "Ali", "Refusé"),
    Person(3, "anonyme@univ-exemple.fr", "", ""),
    Person(4, "long@univ-exemple.fr", "N" * 200, "M" * 100),
    None,
]


def enrollments() -> list[Enrollment]:
    out = []
    for n in range(0, 2800, 7):
        for derogation in (False, True):
            out.append(
                Enrollment(
                    inscription_id=n,
                    doctorant_id=1000 + n,
                    directeur_id=1,
                    date_premiere_inscription=RUN - timedelta(days=n),
                    bloque_re_inscription=False,
                    run_date=RUN,
                    is_current=True,
                    derogation=derogation,
                    already_sent=frozenset(),
                    owner_recorded=frozenset(),
                    enrollment_ids=(n,),
                    defense=None,
                    doctorant=PEOPLE[n % 5],
                    directeur=PEOPLE[(n // 5) % 5],
                )
            )
    return out


@pytest.mark.parametrize("rule", [OwnerThresholds(), Thresholds()], ids=["owner", "legacy"])
def test_every_event_is_the_one_notification_builds(rule: AlertRule) -> None:
    seen: set[tuple[AlertType, bool]] = set()
    for e in enrollments():
        d = decide(e, rule)
        if d is None:
            continue
        seen.add((d.alert, e.derogation))
        events = [json.loads(p) for p in payloads(d, rule)]
        reachable = [
            (p, role)
            for p, role in ((e.doctorant, "DOCTORANT"), (e.directeur, "DIRECTEUR_THESE"))
            if p is not None and "@" in p.email
        ]
        assert [(ev["destinataire"], ev["donnees"]["destinataireRole"]) for ev in events] == [
            (p.email, role) for p, role in reachable
        ]
        for ev in events:
            assert ev["type"] in TYPES and ev["priorite"] in PRIORITES
            rebuilt = notification(
                ev["type"], ev["destinataire"], ev["sujet"], ev["messageTexte"],
                ev["priorite"], ev["donnees"],
            ).to_json()  # fmt: skip
            assert list(ev.items()) == list(rebuilt.items())
            assert list(ev["donnees"]) == list(rebuilt["donnees"])
            assert ev["donnees"]["inscriptionId"] == e.inscription_id
            assert ev["donnees"]["alerteType"] == d.alert.value
    assert {a for a, _ in seen} == set(AlertType)
    assert {der for _, der in seen} == {False, True}
