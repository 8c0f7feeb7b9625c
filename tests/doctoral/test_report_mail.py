"""The report's distribution through a real SMTP server (aiosmtpd), on SQLite and MariaDB.

One mail per enabled admin and per configured extra address, PDF attached; the
per-recipient outcome in ``report_deliveries`` and in the execution detail; an
event per recipient in notification-service's format. SMTP down → FAILED with
the PDF kept; one refused recipient does not stop the others, and a restart
mails only those not yet reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry

from tests.doctoral.factories import assert_consumer_accepts
from tests.doctoral.harness import Databases
from tests.doctoral.report_data import ADMINS
from tests.doctoral.report_fixtures import fresh_portal, report_settings, seeded
from tests.fixtures.smtp import Inbox
from tranche.batch import BatchStatus, JobParameters
from tranche.core.broker import free_port
from tranche.core.outbox import outbox_table
from tranche.doctoral import service
from tranche.doctoral.jobs import monthly_report as MR
from tranche.doctoral.runtime import Runtime

__all__ = ["fresh_portal", "seeded"]

EXTRA = "cellule.qualite@univ-exemple.fr"
EVERYONE = [*ADMINS, EXTRA]


class PickyInbox(Inbox):
    """Refuses RCPT for the addresses in ``refuse`` (a full mailbox, a typo'd domain…)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def picky_port() -> int:
    return free_port()


def start(port: int) -> tuple[PickyInbox, Controller]:
    inbox = PickyInbox("127.0.0.1", port)
    controller = Controller(inbox, hostname=inbox.host, port=port)
    controller.start()
    return inbox, controller


@pytest.fixture
def stop_later() -> Iterator[list[Controller]]:
    running: list[Controller] = []
    yield running
    for c in running:
        c.stop()


@pytest.fixture
async def runtime_for(seeded: Databases, tmp_path: Path) -> Any:
    made: list[Runtime] = []

    async def make(port: int) -> tuple[Runtime, CollectorRegistry]:
        settings = report_settings(
            seeded,
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_timeout_s=5,
            mail_from="batch@univ-exemple.fr",
            report_recipients=[EXTRA, ADMINS[0].upper()],  # the duplicate is sent once
            notifications_topic="notifications-report-test",
        )
        registry = CollectorRegistry()
        runtime = Runtime.build(settings, registry)
        made.append(runtime)
        return runtime, registry

    yield make
    for runtime in made:
        await runtime.close()


async def run_month(runtime: Runtime, month: str) -> Any:
    params = JobParameters({**runtime.parameters("pytest"), MR.MONTH: month})
    return await runtime.launcher.run(runtime.spec(MR.JOB_NAME).job, params)


def reached(inbox: Inbox) -> list[str]:
    """Recipients of report mails, in order (a failed run also mails its failure notice)."""
    return [
        r
        for (_, rcpts), mail in zip(inbox.envelopes, inbox.messages, strict=True)
        if _subject(mail).startswith("Rapport mensuel")
        for r in rcpts
    ]


def _subject(mail: Message) -> str:
    return str(make_header(decode_header(mail["Subject"])))


def _attachment(mail: Message) -> tuple[str | None, str, bytes]:
    [part] = [p for p in mail.walk() if p.get_content_disposition() == "attachment"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return part.get_filename(), part.get_content_type(), payload


async def test_one_mail_per_recipient_with_the_pdf(
    runtime_for: Any, picky_port: int, stop_later: list[Controller], tmp_path: Path
) -> None:
    inbox, controller = start(picky_port)
    stop_later.append(controller)
    runtime, _registry = await runtime_for(picky_port)
    execution = await run_month(runtime, "2025-02")
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status

    assert sorted(reached(inbox)) == sorted(EVERYONE)
    pdf = (tmp_path / "reports" / "rapport_2025_02.pdf").read_bytes()
    assert len(inbox.messages) == 3
    for mail in inbox.messages:
        assert mail["From"] == "batch@univ-exemple.fr"
        assert (
            _subject(mail)
            == "Rapport mensuel — février 2025 (École doctorale Sciences et Techniques)"
        )
        assert _attachment(mail) == ("rapport_2025_02.pdf", "application/pdf", pdf)
        body = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
        raw = body.get_payload(decode=True)
        assert isinstance(raw, bytes)
        text = raw.decode(body.get_content_charset() or "utf-8")
        assert "Taux d'échec des notifications : 28,57" in text
        assert "/api/batch/reports/rapport_2025_02.pdf/download" in text

    detail = (await service.execution_detail(runtime, execution.id)).model_dump(by_alias=True)
    assert {d["recipient"]: d["status"] for d in detail["reportDeliveries"]} == dict.fromkeys(
        EVERYONE, "SENT"
    )
    assert detail["counts"]["mail.sent"] == 3

    async with runtime.sources.batchdb.sessions() as s:
        rows = (
            (
                await s.execute(
                    sa.select(outbox_table.c.payload).where(
                        outbox_table.c.topic == "notifications-report-test"
                    )
                )
            )
            .scalars()
            .all()
        )
    events = [json.loads(r) if isinstance(r, str | bytes) else r for r in rows]
    assert sorted(e["destinataire"] for e in events) == sorted(EVERYONE)
    for e in events:
        assert_consumer_accepts(e)
        assert e["type"] == "NOTIFICATION_GENERALE"
        assert e["donnees"]["evenement"] == "MONTHLY_REPORT_GENERATED"
        assert e["donnees"]["fileName"] == "rapport_2025_02.pdf"
        assert e["donnees"]["downloadUrl"].endswith(
            "/api/batch/reports/rapport_2025_02.pdf/download"
        )

    # A second run of the month replaces the PDF but mails nobody twice.
    again = await run_month(runtime, "2025-02")
    assert again.status is BatchStatus.COMPLETED
    assert len(inbox.messages) == 3
    assert again.context["counts"]["mail.alreadySent"] == 3


async def test_smtp_down_fails_keeps_pdf_and_restart_sends(
    runtime_for: Any, picky_port: int, stop_later: list[Controller], tmp_path: Path
) -> None:
    runtime, _registry = await runtime_for(picky_port)  # nothing listens on the port yet
    failed = await run_month(runtime, "2025-01")
    assert failed.status is BatchStatus.FAILED
    assert "not delivered to 3 of 3" in failed.exit_status.exit_description
    assert (tmp_path / "reports" / "rapport_2025_01.pdf").exists()
    steps = {s.step_name: s.status for s in failed.step_executions}
    assert steps["generatePdfStep"] is BatchStatus.COMPLETED
    assert steps["sendReportMailStep"] is BatchStatus.FAILED
    detail = (await service.execution_detail(runtime, failed.id)).model_dump(by_alias=True)
    assert {d["status"] for d in detail["reportDeliveries"]} == {"FAILED"}
    assert all(d["lastError"] for d in detail["reportDeliveries"])

    inbox, controller = start(picky_port)
    stop_later.append(controller)
    restarted = await runtime.launcher.wait(await runtime.launcher.restart(failed.id))
    assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status
    assert sorted(reached(inbox)) == sorted(EVERYONE)
    detail = (await service.execution_detail(runtime, restarted.id)).model_dump(by_alias=True)
    assert {d["recipient"]: (d["status"], d["attempts"]) for d in detail["reportDeliveries"]} == (
        dict.fromkeys(EVERYONE, ("SENT", 2))
    )


async def test_one_refusal_does_not_stop_the_others_and_restart_sends_only_it(
    runtime_for: Any, picky_port: int, stop_later: list[Controller]
) -> None:
    inbox, controller = start(picky_port)
    stop_later.append(controller)
    inbox.refuse = {ADMINS[0]}
    runtime, registry = await runtime_for(picky_port)
    failed = await run_month(runtime, "2024-12")
    assert failed.status is BatchStatus.FAILED
    assert ADMINS[0] in failed.exit_status.exit_description
    assert "not delivered to 1 of 3" in failed.exit_status.exit_description
    assert sorted(reached(inbox)) == sorted(EVERYONE[1:])

    inbox.refuse = set()
    restarted = await runtime.launcher.wait(await runtime.launcher.restart(failed.id))
    assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status
    assert reached(inbox) == [*EVERYONE[1:], ADMINS[0]]
    sample = registry.get_sample_value
    assert sample("batch_report_recipients_total", {"status": "SENT"}) == 3
    assert sample("batch_report_recipients_total", {"status": "FAILED"}) == 1
    pdf_bytes = sample("batch_report_pdf_size_bytes", {})
    assert pdf_bytes == failed.context[MR.REPORT_KEY]["sizeBytes"] and pdf_bytes > 10_000
    assert (sample("batch_report_generation_seconds", {}) or 0) > 0
    detail = (await service.execution_detail(runtime, restarted.id)).model_dump(by_alias=True)
    assert {d["recipient"]: d["status"] for d in detail["reportDeliveries"]} == dict.fromkeys(
        EVERYONE, "SENT"
    )
