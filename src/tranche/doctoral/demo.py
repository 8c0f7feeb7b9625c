"""The doctoral part of ``tranche demo``: seed the portal, run the jobs over HTTP, show counts.

Runs against the started service like an administrator would: a token as
user-service issues it (signed with the demo's generated ``JWT_SECRET``),
``POST /api/batch/jobs/{job}/run``, then ``GET /api/batch/jobs/executions/{id}``
until the execution ends; the duration alerts are then waited for until the
broker has acknowledged every one of them. The monthly report covers last
month, is mailed to a local SMTP receiver (aiosmtpd) and its path is printed.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpx
import sqlalchemy as sa

from tranche.batch import BatchSettings
from tranche.core.broker import free_port
from tranche.core.db import Database
from tranche.core.jwt import issue_token
from tranche.core.outbox import outbox_table
from tranche.core.service import DemoContext, DemoLine
from tranche.doctoral.archive.keys import new_key
from tranche.doctoral.seed import seed_portal
from tranche.doctoral.settings import DoctoralSettings

__all__ = ["demo", "demo_overrides"]

JOBS = (
    "tokenCleanupJob",
    "dureeDoctoratAlertJob",
    "monthlyReportJob",
    "dataConsistencyJob",
    "archiveJob",
)


@dataclass
class _Inbox:
    """A local SMTP receiver (aiosmtpd) standing in for the school's mail server."""

    host: str
    port: int
    mails: int = 0
    by_attachment: dict[str, list[str]] = field(default_factory=dict)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.mails += 1
        mail = message_from_bytes(envelope.original_content or envelope.content)
        for part in mail.walk():
            if part.get_content_disposition() == "attachment":
                name = str(part.get_filename())
                self.by_attachment.setdefault(name, []).extend(envelope.rcpt_tos)
        return "250 OK"


_RECEIVER: dict[str, Any] = {}


def _start_receiver() -> _Inbox | None:
    """aiosmtpd is a development tool: without it the demo's mails are recorded SKIPPED."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        return None
    inbox = _Inbox("127.0.0.1", free_port())
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    _RECEIVER.update(inbox=inbox, controller=controller)
    return inbox


def _stop_receiver() -> None:
    controller = _RECEIVER.pop("controller", None)
    if controller is not None:
        controller.stop()


def demo_overrides(_base_urls: dict[str, str]) -> dict[str, Any]:
    """A fresh secret per demo (there is no user-service to share one with); no cron firing;
    the monthly report mailed to a local SMTP receiver."""
    overrides: dict[str, Any] = {
        "jwt_secret": secrets.token_urlsafe(48),
        "archive_keys": {"demo": new_key()},
        "batch": BatchSettings(scheduler_enabled=False),
    }
    inbox = _start_receiver()
    if inbox is not None:
        overrides.update(
            smtp_host=inbox.host, smtp_port=inbox.port, mail_from="batch-service@univ-exemple.fr"
        )
    return overrides


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing to do"


async def _run(client: httpx.AsyncClient, job: str, timeout_s: float = 300.0) -> dict[str, Any]:
    response = await client.post(f"/api/batch/jobs/{job}/run")
    response.raise_for_status()
    execution_id = response.json()["executionId"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        body: dict[str, Any] = (
            await client.get(f"/api/batch/jobs/executions/{execution_id}")
        ).json()
        if body["status"] not in ("STARTING", "STARTED", "STOPPING"):
            return body
        if loop.time() > deadline:
            raise TimeoutError(f"{job} execution {execution_id} still {body['status']}")
        await asyncio.sleep(0.2)


async def _published(settings: DoctoralSettings, timeout_s: float = 60.0) -> tuple[int, int]:
    """``(sent, written)``: the jobs' events on the notifications topic, once every one the
    outbox holds was acknowledged by the broker (or the time ran out)."""
    db = Database.open("batchdb", settings.database_urls()["batchdb"], settings.pool())
    on_topic = outbox_table.c.topic == settings.notifications_topic
    sent_case = sa.case((outbox_table.c.status == "SENT", 1), else_=0)
    query = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(sent_case), 0)).where(on_topic)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        written = sent = 0
        while loop.time() < deadline:
            async with db.sessions() as s:
                written, sent = (await s.execute(query)).one()
            if sent >= written:
                break
            await asyncio.sleep(0.2)
        return int(sent), int(written)
    finally:
        await db.close()


async def demo(settings: DoctoralSettings, ctx: DemoContext) -> list[DemoLine]:
    say = ctx.say
    now = datetime.now(UTC)
    say("[bold]doctoral[/] seeding the portal's four databases (Faker fr_FR)")
    files = (settings.uploads_path, settings.pv_storage_path)
    report = await seed_portal(settings.database_urls(), settings.pool(), 1, now, files=files)
    c = report.counts
    lines = [
        DemoLine(
            "doctoral",
            "seed-demo",
            f"{c.get('users ROLE_DOCTORANT', 0)} doctorants, "
            f"{c.get('inscriptions rows', 0)} enrollments, "
            f"{c.get('refresh_token expired', 0)} expired refresh tokens",
        )
    ]
    assert settings.jwt_secret is not None
    say(
        "[bold yellow]doctoral[/] JWT_SECRET and the archive key were generated for this demo "
        "run only; a real deployment sets JWT_SECRET to user-service's secret and keeps its "
        "DOCTORAL_ARCHIVE_KEYS safe"
    )
    key = settings.jwt_secret.get_secret_value().encode()
    admin = issue_token(key, "admin.demo@univ-exemple.fr", ["ROLE_ADMIN"], settings.jwt_issuer)
    student = issue_token(key, "doctorant@univ-exemple.fr", ["ROLE_DOCTORANT"], settings.jwt_issuer)
    base = ctx.base_urls["doctoral"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as anonymous:
        refused = (await anonymous.get("/api/batch/jobs")).status_code
        forbidden = (
            await anonymous.get("/api/batch/jobs", headers={"Authorization": f"Bearer {student}"})
        ).status_code
    lines.append(
        DemoLine("doctoral", "admin API guard", f"no token {refused}, ROLE_DOCTORANT {forbidden}")
    )
    async with httpx.AsyncClient(
        base_url=base, timeout=30, headers={"Authorization": f"Bearer {admin}"}
    ) as client:
        for job in JOBS:
            say(f"[bold]doctoral[/] running {job} through POST /api/batch/jobs/{job}/run")
            body = await _run(client, job)
            counts = body.get("counts", {})
            lines.append(
                DemoLine(
                    "doctoral",
                    f"{job} (execution {body['executionId']})",
                    f"{body['status']} in {body['duration']}: {_summary(counts)}",
                )
            )
    report_line = _report_line(settings)
    say(f"[bold]doctoral[/] monthly report: {report_line.result}")
    lines.append(report_line)
    sent, written = await _published(settings)
    lines.append(
        DemoLine(
            "doctoral",
            f"topic '{settings.notifications_topic}'",
            f"{sent}/{written} events (RAPPEL_ECHEANCE, NOTIFICATION_GENERALE for the report, "
            "ALERTE_SYSTEME for anomalies) acknowledged by the broker",
        )
    )
    return lines


def _report_line(settings: DoctoralSettings) -> DemoLine:
    """Where last month's report is, and what the local SMTP receiver got."""
    inbox: _Inbox | None = _RECEIVER.get("inbox")
    _stop_receiver()
    reports = sorted(settings.reports_directory.glob("rapport_*.pdf"))
    where = str(reports[-1].resolve()) if reports else "no report written"
    if inbox is None:
        mailed = "aiosmtpd not installed: mails recorded SKIPPED"
    else:
        name = reports[-1].name if reports else ""
        to = inbox.by_attachment.get(name, [])
        anomaly = sum(len(r) for n, r in inbox.by_attachment.items() if n.startswith("anomaly_"))
        mailed = (
            f"mailed with {name or 'no report'} to {', '.join(to) or 'nobody'}; "
            f"the local SMTP receiver got {inbox.mails} mail(s) in all "
            f"({anomaly} anomaly report(s), the rest re-sent notifications and alerts)"
        )
    return DemoLine("doctoral", "monthly report", f"{where}; {mailed}")
