"""dureeDoctoratAlertJob end to end, on SQLite, MariaDB and PostgreSQL, with the real broker.

The owner's thresholds (days / 365.25) produce exactly the expected events, once,
on the notifications topic, in notification-service's format, and the owner's
``alertes_duree`` rows; the exceeded enrollment is blocked with the owner's flag;
a second run sends nothing new.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.doctoral.factories import (
    assert_consumer_accepts,
    wait_published,
)
from tests.doctoral.harness import Running
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume
from tranche.batch import BatchStatus
from tranche.core.outbox import outbox_table
from tranche.core.settings import KafkaSettings
from tranche.doctoral.models import alerte_duree_envoyee, job_execution_history
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import userdb as U

RUN = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)
A3, A6, D6 = "APPROCHE_3_ANS", "APPROCHE_6_ANS", "DEPASSE_6_ANS"

# (days since first enrollment, derogation) → the owner's alert type expected, or None.
CASES: list[tuple[int, bool, str | None]] = [
    (913, False, None),  # 2.4997 years
    (914, False, A3),  # 2.5024
    (914, True, A3),  # the owner ignores the derogation
    (1500, False, A3),  # 4.1 years: the old batch's 36-68-month hole
    (2008, False, A3),
    (2009, False, A6),  # 5.5003
    (2191, True, A6),
    (2192, False, D6),  # 6.0014
    (2500, True, D6),
]
PRIORITE = {A3: "NORMALE", A6: "HAUTE", D6: "URGENTE"}


def days_before(run: datetime, days: int) -> datetime:
    """A first-enrollment instant ``days`` calendar days before ``run``'s date, at 10:00."""
    return datetime.combine(run.date() - timedelta(days=days), datetime.min.time()) + timedelta(
        hours=10
    )


async def test_alert_boundaries_once_in_consumer_format(
    make_runtime: Any, kafka_bootstrap: str
) -> None:
    topic = unique_topic("notifications")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    running: Running = await make_runtime(relay=True, notifications_topic=topic, kafka=kafka)
    runtime, portal = running.runtime, running.portal
    director = await portal.user("ROLE_DIRECTEUR", email="directeur.these@univ-exemple.fr")
    expected: dict[int, str] = {}
    emails: dict[int, str] = {}
    enrollment_of: dict[int, int] = {}
    for n, (days, derogation, alert) in enumerate(CASES):
        doc = await portal.user(email=f"doctorant.{n}@etu.univ-exemple.fr")
        first = days_before(RUN, days)
        eid = await portal.enrollment(doc, director, first, derogation=derogation or None)
        enrollment_of[doc], emails[doc] = eid, f"doctorant.{n}@etu.univ-exemple.fr"
        if alert:
            expected[doc] = alert

    # Re-enrolled doctorant: two validated rows share the date; only the latest speaks.
    twice = await portal.user(email="reinscrit@etu.univ-exemple.fr")
    first = days_before(RUN, 1100)
    await portal.enrollment(twice, director, first, derogation=None)
    latest = await portal.enrollment(twice, director, first, kind="REINSCRIPTION")
    expected[twice], emails[twice], enrollment_of[twice] = (
        A3,
        "reinscrit@etu.univ-exemple.fr",
        latest,
    )
    # A pending enrollment (no date yet) and a rejected one are not the job's business.
    await portal.enrollment(await portal.user(), director, None, statut="EN_ATTENTE_ADMIN")
    await portal.enrollment(await portal.user(), director, days_before(RUN, 2100), statut="REJETE")

    spec = runtime.spec("dureeDoctoratAlertJob")
    execution = await runtime.launcher.run(spec.job, runtime.parameters("pytest", at=RUN))
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status

    await wait_published(runtime.sources.batchdb, topic, 2 * len(expected))
    records = await consume(kafka_bootstrap, topic, 2 * len(expected))
    assert len(records) == 2 * len(expected)
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for record in records:
        value = json.loads(record.value)
        assert_consumer_accepts(value)
        assert value["type"] == "RAPPEL_ECHEANCE"
        donnees = value["donnees"]
        doc = donnees["doctorantId"]
        assert record.key == str(doc).encode()
        assert donnees["alerteType"] == expected[doc]
        assert donnees["inscriptionId"] == enrollment_of[doc]
        assert value["priorite"] == PRIORITE[expected[doc]]
        seen[(doc, donnees["destinataireRole"])] = value
    for doc in expected:
        assert seen[(doc, "DOCTORANT")]["destinataire"] == emails[doc]
        assert seen[(doc, "DIRECTEUR_THESE")]["destinataire"] == "directeur.these@univ-exemple.fr"

    async with runtime.sources.inscription_db.sessions() as s:
        blocked = set(
            (
                await s.execute(
                    sa.select(I.inscriptions.c.doctorant_id).where(
                        I.inscriptions.c.bloque_re_inscription == sa.true()
                    )
                )
            ).scalars()
        )
    assert blocked == {d for d, a in expected.items() if a == D6}
    async with runtime.sources.inscription_db.sessions() as s:
        owner_rows = (
            await s.execute(
                sa.select(
                    I.alertes_duree.c.inscription_id,
                    I.alertes_duree.c.type,
                    I.alertes_duree.c.traite,
                )
            )
        ).all()
    # The owner's table: one row per (inscription, type), untreated, as its service writes it.
    assert sorted((r.inscription_id, r.type) for r in owner_rows) == sorted(
        (enrollment_of[d], a) for d, a in expected.items()
    )
    assert not any(r.traite for r in owner_rows)

    async with runtime.sources.batchdb.sessions() as s:
        ledger = (await s.execute(sa.select(alerte_duree_envoyee))).all()
        history = (
            await s.execute(
                sa.select(job_execution_history.c.counts).where(
                    job_execution_history.c.job_execution_id == execution.id
                )
            )
        ).scalar_one()
    assert {(r.doctorant_id, r.type_alerte) for r in ledger} == set(expected.items())
    assert history == {
        "alertes.APPROCHE_3_ANS": 5,
        "alertes.APPROCHE_6_ANS": 2,
        "alertes.DEPASSE_6_ANS": 2,
        "alertesEnregistrees": 9,
        "notifications": 18,
        "reinscriptionsBloquees": 2,
    }

    # Run again the same day: nothing new is enqueued (so nothing new can be sent).
    later = await runtime.launcher.run(
        spec.job, runtime.parameters("pytest", at=RUN.replace(hour=11))
    )
    assert later.status is BatchStatus.COMPLETED
    assert later.step_executions[0].write_count == 0
    async with runtime.sources.batchdb.sessions() as s:
        queued = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.topic == topic)
            )
        ).scalar_one()
    assert queued == 2 * len(expected)


async def test_missing_people_are_an_anomaly_for_the_admins(
    make_runtime: Any, kafka_bootstrap: str
) -> None:
    topic = unique_topic("notifications")
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False)
    running: Running = await make_runtime(relay=True, notifications_topic=topic, kafka=kafka)
    runtime, portal = running.runtime, running.portal
    admin = await portal.user("ROLE_ADMIN", email="admin.portail@univ-exemple.fr")
    director = await portal.user("ROLE_DIRECTEUR")
    first = days_before(RUN, 2100)
    # Doctorant deleted from userdb, director known: the director is still told.
    only_director = await portal.enrollment(10_000_001, director, first)
    # Neither is known: nobody can be notified; not recorded, reported to the admins.
    nobody = await portal.enrollment(10_000_002, 10_000_003, first)
    # Both known, but userdb holds addresses the consumer would refuse: the same.
    bad_doc = await portal.user(email="pas-une-adresse")
    bad_dir = await portal.user("ROLE_DIRECTEUR", email="directeur@sans-domaine")
    unusable = await portal.enrollment(bad_doc, bad_dir, first)
    assert admin

    spec = runtime.spec("dureeDoctoratAlertJob")
    execution = await runtime.launcher.run(
        spec.job, runtime.parameters("pytest", at=RUN.replace(hour=9))
    )
    assert execution.status is BatchStatus.COMPLETED
    await wait_published(runtime.sources.batchdb, topic, 2)
    records = [json.loads(r.value) for r in await consume(kafka_bootstrap, topic, 2)]
    by_type = {v["type"]: v for v in records}
    assert by_type["RAPPEL_ECHEANCE"]["donnees"]["inscriptionId"] == only_director
    anomaly = by_type["ALERTE_SYSTEME"]
    assert_consumer_accepts(anomaly)
    assert anomaly["destinataire"] == "admin.portail@univ-exemple.fr"
    assert {nobody, unusable} <= set(anomaly["donnees"]["identifiants"])
    # The text says what is wrong with each: people missing, or addresses refused.
    text = anomaly["messageTexte"]
    assert "absent(s) de userdb : doctorant, directeur de thèse" in text
    assert (
        f"adresse e-mail refusée par notification-service : doctorant (utilisateur {bad_doc})"
        in text
    )
    assert "Enrollments" not in text and "missing" not in text
    reasons = {d["inscriptionId"]: d["raison"] for d in anomaly["donnees"]["details"]}
    assert "absent" not in reasons[unusable] and "refusée" in reasons[unusable]
    async with runtime.sources.batchdb.sessions() as s:
        recorded = set(
            (await s.execute(sa.select(alerte_duree_envoyee.c.inscription_id))).scalars()
        )
    assert only_director in recorded and not {nobody, unusable} & recorded
    async with runtime.sources.userdb.sessions() as s:
        assert (await s.execute(sa.select(sa.func.count()).select_from(U.users))).scalar()
