"""dureeDoctoratAlertJob end to end, on SQLite and on MariaDB, with the real broker.

Alert boundaries produce exactly the expected events, once, on the notifications
topic, in notification-service's format; the exceeded enrollment is blocked with
the owner's flag; a second run sends nothing new.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tests.doctoral.factories import (
    assert_consumer_accepts,
    months_before,
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

# (months since first enrollment, derogation) → the alert type expected, or None.
CASES: list[tuple[float, bool, str | None]] = [
    (32.9, False, None),
    (33, False, "3_ANS"),
    (35.9, False, "3_ANS"),
    (36, False, None),
    (33, True, None),
    (35.9, True, None),
    (68.9, False, None),
    (69, False, "6_ANS"),
    (71.9, False, "6_ANS"),
    (69, True, "6_ANS"),
    (72, False, "DEPASSEMENT"),
    (72, True, "DEPASSEMENT"),
]
PRIORITE = {"3_ANS": "NORMALE", "6_ANS": "HAUTE", "DEPASSEMENT": "URGENTE"}


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
    for n, (months, derogation, alert) in enumerate(CASES):
        doc = await portal.user(email=f"doctorant.{n}@etu.univ-exemple.fr")
        first = months_before(RUN.date(), months)
        eid = await portal.enrollment(doc, director, first, derogation=derogation or None)
        enrollment_of[doc], emails[doc] = eid, f"doctorant.{n}@etu.univ-exemple.fr"
        if alert:
            expected[doc] = alert

    # Re-enrolled doctorant: two validated rows share the date; only the latest speaks.
    twice = await portal.user(email="reinscrit@etu.univ-exemple.fr")
    first = months_before(RUN.date(), 34)
    await portal.enrollment(twice, director, first, derogation=None)
    latest = await portal.enrollment(twice, director, first, kind="REINSCRIPTION")
    expected[twice], emails[twice], enrollment_of[twice] = (
        "3_ANS",
        "reinscrit@etu.univ-exemple.fr",
        latest,
    )
    # A pending enrollment (no date yet) and a rejected one are not the job's business.
    await portal.enrollment(await portal.user(), director, None, statut="EN_ATTENTE_ADMIN")
    await portal.enrollment(
        await portal.user(), director, months_before(RUN.date(), 70), statut="REJETE"
    )

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
    assert blocked == {d for d, a in expected.items() if a == "DEPASSEMENT"}

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
        "alertes.3_ANS": 3,
        "alertes.6_ANS": 3,
        "alertes.DEPASSEMENT": 2,
        "notifications": 16,
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
    first = months_before(RUN.date(), 70)
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
    async with runtime.sources.batchdb.sessions() as s:
        recorded = set(
            (await s.execute(sa.select(alerte_duree_envoyee.c.inscription_id))).scalars()
        )
    assert only_director in recorded and not {nobody, unusable} & recorded
    async with runtime.sources.userdb.sessions() as s:
        assert (await s.execute(sa.select(sa.func.count()).select_from(U.users))).scalar()
