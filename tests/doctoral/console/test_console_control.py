"""Stop, Restart and Abandon from the console, on executions that are really running.

dataConsistencyJob re-sends by mail the notifications left PENDING for more than a day;
the test SMTP server holds its answer, so the execution is genuinely STARTED (waiting on
the server, before its last step) for as long as the test needs, and a stop asked
meanwhile ends it STOPPED at the next step boundary once the answer comes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.doctoral.console.browsing import (
    expect,
    finished_execution,
    job_row,
    shoot,
    sign_in,
    status_of,
)
from tests.doctoral.console.harness import MailServer, Service
from tranche.doctoral.tables.notification_db import notifications

JOB = "dataConsistencyJob"


def leave_a_notification_pending(service: Service) -> None:
    """One notification notification-service could not send two days ago: mail to re-send."""
    engine = sa.create_engine(f"sqlite:///{service.data_dir / 'notification_db.db'}")
    created = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2)
    try:
        with engine.begin() as conn:
            conn.execute(
                notifications.insert().values(
                    type="RAPPEL_ECHEANCE",
                    destinataire="doctorant.retard@univ-exemple.fr",
                    sujet="Rappel : réinscription",
                    message_texte="Votre réinscription est attendue.",
                    statut="PENDING",
                    priorite="NORMALE",
                    nombre_tentatives=1,
                    lu=False,
                    date_creation=created,
                    date_modification=created,
                )
            )
    finally:
        engine.dispose()


@pytest.fixture
def held_mail(mail_server: MailServer, service: Service) -> Iterator[MailServer]:
    """The SMTP server holds DATA until the test releases it (released at the end anyway)."""
    leave_a_notification_pending(service)
    mail_server.hold()
    try:
        yield mail_server
    finally:
        mail_server.release()


def start_and_stop(
    page: Any, service: Service, mail: MailServer, screenshots: Path | None = None
) -> int:
    """Run the job from the console, stop it while it waits on the mail server; its id.

    With ``screenshots``, the running and the stopped execution are shot there."""
    sign_in(page, service)
    job_row(page, JOB).get_by_role("button", name=f"Lancer {JOB}").click()
    page.get_by_role("dialog").get_by_role("button", name="Lancer maintenant").click()
    expect(status_of(page)).to_have_attribute("data-status", "STARTED")
    execution_id = int(page.url.rsplit("/", 1)[1])
    page.evaluate("() => { window.notReloaded = true; }")
    # The re-send step is under way: it cannot end before the server answers.
    resend = page.get_by_role("row").filter(has_text="retryPendingNotificationsStep")
    expect(resend.locator("[data-status]")).to_have_attribute("data-status", "STARTED")
    if screenshots:
        shoot(page, screenshots, "execution-running")
    expect(page.get_by_role("button", name="Relancer")).to_have_count(0)
    page.get_by_role("button", name="Arrêter").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Arrêter l'exécution n° {execution_id} ?")
    dialog.get_by_role("button", name="Arrêter").click()
    # Still waiting on the server: the page shows the stop under way, by itself.
    expect(status_of(page)).to_have_attribute("data-status", "STOPPING")
    expect(status_of(page)).to_have_text("Arrêt en cours")
    mail.release()
    finished_execution(page, "STOPPED")
    assert page.evaluate("() => window.notReloaded") is True  # all of it seen live
    expect(page.get_by_role("status")).to_have_text(f"Exécution n° {execution_id} : Arrêté.")
    if screenshots:
        shoot(page, screenshots, "execution-stopped")
    return execution_id


def test_a_running_job_is_stopped_then_restarted_to_completion(
    page: Any, service: Service, held_mail: MailServer, tmp_path: Path
) -> None:
    """Also the running / stopped screenshots of docs/doctoral.md."""
    stopped = start_and_stop(page, service, held_mail, tmp_path)
    expect(page.get_by_role("button", name="Arrêter")).to_have_count(0)
    page.get_by_role("button", name="Relancer").click()
    page.get_by_role("dialog").get_by_role("button", name="Relancer").click()
    restarted = finished_execution(page)
    assert restarted != stopped
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"Exécution n° {restarted}")
    assert service.api("GET", f"/api/batch/jobs/executions/{stopped}").json()["status"] == (
        "STOPPED"
    )


def test_a_stopped_job_is_abandoned_for_good(
    page: Any, service: Service, held_mail: MailServer
) -> None:
    stopped = start_and_stop(page, service, held_mail)
    page.get_by_role("button", name="Abandonner").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("ne pourra plus jamais être relancée")
    dialog.get_by_role("button", name="Abandonner").click()
    expect(status_of(page)).to_have_attribute("data-status", "ABANDONED")
    expect(page.get_by_role("status")).to_have_text(f"Exécution n° {stopped} : Abandonné.")
    expect(page.get_by_role("button", name="Relancer")).to_have_count(0)
    expect(page.get_by_role("button", name="Abandonner")).to_have_count(0)
    assert service.api("GET", f"/api/batch/jobs/executions/{stopped}").json()["status"] == (
        "ABANDONED"
    )
