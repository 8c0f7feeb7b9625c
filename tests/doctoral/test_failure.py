"""A failed job: FAILED in history and audit, an urgent event per admin, and a mail to them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.doctoral.factories import assert_consumer_accepts, wait_published
from tests.doctoral.harness import Running
from tests.fixtures.broker import unique_topic
from tests.fixtures.smtp import Inbox
from tests.fixtures.waiting import consume
from tranche.batch import BatchStatus
from tranche.core.settings import KafkaSettings
from tranche.doctoral.models import audit_log, job_execution_history

RUN = datetime(2025, 3, 18, 2, 0, tzinfo=UTC)


async def test_failure_is_announced_by_event_and_mail(
    make_runtime: Any, kafka_bootstrap: str, smtp_server: Inbox, tmp_path: Path
) -> None:
    topic = unique_topic("notifications")
    # userdb is unreachable as a database of the portal: an empty file without its tables.
    running: Running = await make_runtime(
        relay=True,
        notifications_topic=topic,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False),
        user_db_url=f"sqlite+aiosqlite:///{tmp_path / 'empty-userdb.db'}",
        admin_emails=["exploitation@univ-exemple.fr"],
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        mail_from="batch@univ-exemple.fr",
    )
    runtime = running.runtime
    execution = await runtime.launcher.run(
        runtime.spec("tokenCleanupJob").job, runtime.parameters("pytest", at=RUN)
    )
    assert execution.status is BatchStatus.FAILED

    await wait_published(runtime.sources.batchdb, topic, 1)
    [record] = await consume(kafka_bootstrap, topic, 1)
    event = json.loads(record.value)
    assert_consumer_accepts(event)
    assert (event["type"], event["priorite"]) == ("ALERTE_SYSTEME", "URGENTE")
    assert event["destinataire"] == "exploitation@univ-exemple.fr"
    assert event["donnees"]["jobName"] == "tokenCleanupJob"
    assert event["donnees"]["executionId"] == execution.id
    assert "refresh_token" in event["donnees"]["exitMessage"]
    # For people: the cause on one line, what to do, where the traceback is; no traceback,
    # no SQL, no server path, nothing cut mid-line.
    text = event["messageTexte"]
    cause, todo = text.splitlines()[1], text.splitlines()[2]
    assert cause.startswith("Cause : ") and "no such table: refresh_token" in cause
    assert todo.startswith("Que faire : une base de données a refusé la requête du job")
    assert "tranche job restart" in todo and todo.endswith(".")
    for forbidden in ("Traceback", "[SQL:", "sqlalche.me", str(tmp_path)):
        assert forbidden not in text
    assert "\n" not in execution.exit_status.exit_description
    assert "Traceback (most recent call last)" in execution.context["batch.failure.detail"]

    [mail] = smtp_server.messages
    assert smtp_server.envelopes == [("batch@univ-exemple.fr", ["exploitation@univ-exemple.fr"])]
    assert mail["To"] == "exploitation@univ-exemple.fr"
    assert mail["From"] == "batch@univ-exemple.fr"
    body = mail.get_payload(decode=True).decode()
    assert "Cause : " in body and "Que faire : " in body and "Traceback" not in body
    subject = str(make_header(decode_header(mail["Subject"])))
    assert subject == f"[Batch] Échec du job tokenCleanupJob (exécution {execution.id})"

    async with runtime.sources.batchdb.sessions() as s:
        history = (
            await s.execute(
                sa.select(job_execution_history).where(
                    job_execution_history.c.job_execution_id == execution.id
                )
            )
        ).one()
        audit = (
            await s.execute(sa.select(audit_log).where(audit_log.c.execution_id == execution.id))
        ).one()
    assert history.status == "FAILED" and "refresh_token" in history.exit_message
    assert audit.status == "FAILED"
