"""Re-sending stuck notifications: failures, FAILED after the configured attempts, never twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.doctoral.consistency_world import RUN, RUN_NAIVE, TECH, events, fresh, pending
from tests.doctoral.harness import Databases
from tests.fixtures.smtp import Inbox
from tranche.batch import BatchStatus
from tranche.core.broker import free_port
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.tables import notification_db as N

__all__ = ["fresh"]

JOB = "dataConsistencyJob"


def _runtime(fresh: Databases, tmp_path: Path, host: str, port: int) -> Runtime:
    settings = fresh.settings(
        uploads_dir=tmp_path / "uploads",
        reports_dir=tmp_path / "reports",
        smtp_host=host,
        smtp_port=port,
        smtp_timeout_s=5,
        technical_admin_email=TECH,
        notification_max_attempts=3,
    )
    return Runtime.build(settings, CollectorRegistry())


@pytest.fixture
async def unreachable_smtp(fresh: Databases, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = _runtime(fresh, tmp_path, "127.0.0.1", free_port())  # nothing listens there
    try:
        yield rt
    finally:
        await rt.close()


@pytest.fixture
async def working_smtp(
    fresh: Databases, tmp_path: Path, smtp_server: Inbox
) -> AsyncIterator[Runtime]:
    rt = _runtime(fresh, tmp_path, smtp_server.host, smtp_server.port)
    try:
        yield rt
    finally:
        await rt.close()


async def _row(rt: Runtime, nid: int) -> Any:
    async with rt.sources.notification_db.sessions() as s:
        return (
            await s.execute(sa.select(N.notifications).where(N.notifications.c.id == nid))
        ).one()


async def test_failure_keeps_it_pending_until_the_last_attempt_then_failed(
    unreachable_smtp: Runtime,
) -> None:
    rt = unreachable_smtp
    db = rt.sources.notification_db
    first_try = await pending(db, "a@univ-exemple.fr", RUN_NAIVE - timedelta(days=2), tries=0)
    last_try = await pending(db, "b@univ-exemple.fr", RUN_NAIVE - timedelta(days=3), tries=2)

    execution = await rt.launcher.run(rt.spec(JOB).job, rt.parameters("pytest", at=RUN))
    # The retry step completes; the anomaly report cannot be mailed either, so the run
    # ends FAILED in the report step, restartable (tests/reliability/test_doctoral_mail_faults).
    steps = {s.step_name: s.status for s in execution.step_executions}
    assert steps.pop("generateAnomalyReportStep") is BatchStatus.FAILED, execution.exit_status
    assert steps["retryPendingNotificationsStep"] is BatchStatus.COMPLETED
    assert all(status is BatchStatus.COMPLETED for status in steps.values())
    assert execution.status is BatchStatus.FAILED
    assert f"not mailed to 1 of 1 recipient(s) (0 sent now, 0 earlier): {TECH}" in (
        execution.exit_status.exit_description
    )

    again = await _row(rt, first_try)
    assert again.statut == "PENDING" and again.nombre_tentatives == 1
    assert again.erreur_message and again.date_envoi is None
    failed = await _row(rt, last_try)
    assert failed.statut == "FAILED" and failed.nombre_tentatives == 3
    assert failed.erreur_message and failed.date_envoi is None
    notices = [
        e
        for e in await events(rt.sources.batchdb)
        if e["donnees"].get("evenement") == "NOTIFICATION_RETRY_FAILED"
    ]
    assert [(n["destinataire"], n["type"], n["priorite"]) for n in notices] == [
        (TECH, "ALERTE_SYSTEME", "URGENTE")
    ]
    assert notices[0]["donnees"]["notificationIds"] == [last_try]


async def test_a_claimed_notification_is_never_sent_again_after_a_crash(
    working_smtp: Runtime, smtp_server: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = working_smtp
    db = rt.sources.notification_db
    crashed = await pending(db, "a@univ-exemple.fr", RUN_NAIVE - timedelta(days=2))
    later = await pending(db, "b@univ-exemple.fr", RUN_NAIVE - timedelta(days=2))
    real = rt.mailer.deliver
    calls: list[list[str]] = []

    async def crash_on_first(to: list[str], *args: Any, **kwargs: Any) -> None:
        calls.append(list(to))
        if len(calls) == 1:
            # The process dies mid-send: the server may or may not have the mail.
            raise RuntimeError("killed while talking to the SMTP server")
        await real(to, *args, **kwargs)

    monkeypatch.setattr(rt.mailer, "deliver", crash_on_first)
    first = await rt.launcher.run(rt.spec(JOB).job, rt.parameters("pytest", at=RUN))
    assert first.status is BatchStatus.FAILED
    assert (await _row(rt, crashed)).statut == "RETRYING"

    restarted_id = await rt.launcher.restart(first.id)
    restarted = await rt.launcher.wait(restarted_id)
    assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status
    # The claimed one was not tried again; the other was sent once.
    # (the technical admin's report mail aside)
    assert [c for c in calls if c != [TECH]] == [["a@univ-exemple.fr"], ["b@univ-exemple.fr"]]
    assert [m["To"] for m in smtp_server.messages if m["To"] != TECH] == ["b@univ-exemple.fr"]
    assert (await _row(rt, crashed)).statut == "RETRYING"
    assert (await _row(rt, later)).statut == "SENT"

    # Another run later still leaves it alone, and reports it for a person once it is stale.
    async with db.transaction() as s:
        await s.execute(
            sa.update(N.notifications)
            .where(N.notifications.c.id == crashed)
            .values(date_modification=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2))
        )
    third = await rt.launcher.run(
        rt.spec(JOB).job, rt.parameters("pytest", at=RUN + timedelta(minutes=30))
    )
    assert third.status is BatchStatus.COMPLETED
    assert [c for c in calls if c != [TECH]] == [["a@univ-exemple.fr"], ["b@univ-exemple.fr"]]
    assert (await _row(rt, crashed)).statut == "RETRYING"
    assert third.context["counts"]["anomalies.notificationsEnAttente.manual"] == 1
