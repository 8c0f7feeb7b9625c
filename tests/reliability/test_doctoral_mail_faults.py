"""dataConsistencyJob's anomaly report with SMTP down, on the real MariaDB and a real SMTP server.

The mail server is an aiosmtpd on a loopback port: first nothing listens there
(connection refused), or it refuses one recipient (451); the report step then
FAILS naming who was not reached, each attempt is an ``ANOMALY_REPORT_MAIL``
audit row, and once the server is back a restart mails each admin exactly once,
counted by the messages the server received. A later run reports nothing again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from prometheus_client import CollectorRegistry

from tests.doctoral.consistency_world import ADMIN, RUN, events, plant
from tests.doctoral.factories import Portal
from tests.doctoral.harness import Databases
from tests.fixtures.smtp import Inbox
from tests.reliability.doctoral_world import mariadb_world
from tranche.batch import BatchSettings, BatchStatus, JobExecution
from tranche.core.broker import free_port
from tranche.doctoral.consistency.anomalies import anomalie_signalee
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime

JOB = "dataConsistencyJob"
REPORT_STEP = "generateAnomalyReportStep"
OPS = "exploitation@univ-exemple.fr"
OPS2 = "astreinte@univ-exemple.fr"
#: userdb's ROLE_ADMIN (planted) and the two configured admins: the report's recipients.
ADMINS = sorted([ADMIN, OPS, OPS2])
#: A credential that must never be written down (audit rows, exit message).
PASSWORD = "s3cr3t-smtp-Pw"
SUBJECT = "[Batch] Rapport d'anomalies"
REPORT = "anomaly_report_2025_03_17_230000.pdf"


class Refusing(Inbox):
    """Accepts mail, except (while ``refused`` holds them) for some recipients: 451."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return "451 4.3.0 mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def _accept(*_: Any) -> AuthResult:
    return AuthResult(success=True)


@contextmanager
def smtp_on(inbox: Inbox) -> Iterator[Inbox]:
    controller = Controller(
        inbox,
        hostname=inbox.host,
        port=inbox.port,
        authenticator=_accept,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
async def world() -> AsyncIterator[Databases]:
    async with mariadb_world() as databases:
        yield databases


@pytest.fixture
async def port() -> int:
    return free_port()


@pytest.fixture
async def runtime(world: Databases, tmp_path: Path, port: int) -> AsyncIterator[Runtime]:
    settings = world.settings(
        batch=BatchSettings(scheduler_enabled=False),
        uploads_dir=tmp_path / "uploads",
        reports_dir=tmp_path / "reports",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_username="batch",
        smtp_password=PASSWORD,
        smtp_timeout_s=5.0,
        mail_from="batch@univ-exemple.fr",
        admin_emails=[OPS, OPS2],
        consistency_chunk_size=2,
    )
    rt = Runtime.build(settings, CollectorRegistry())
    src = rt.sources
    await plant(
        Portal(src.userdb, src.inscription_db),
        src.defensedb,
        src.notification_db,
        rt.settings.uploads_path,
    )
    try:
        yield rt
    finally:
        await rt.close()


async def _start(rt: Runtime, at: Any = RUN) -> JobExecution:
    return await rt.launcher.wait(await rt.start(JOB, "pytest", at=at))


async def _restart(rt: Runtime, failed: JobExecution) -> JobExecution:
    return await rt.launcher.wait(await rt.launcher.restart(failed.id))


def _subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def reports_received(inbox: Inbox, report: str = REPORT) -> Counter[str]:
    """Messages carrying ``report`` the server accepted, per envelope recipient."""
    got: Counter[str] = Counter()
    for (_, rcpts), message in zip(inbox.envelopes, inbox.messages, strict=True):
        names = [p.get_filename() for p in message.walk() if p.get_filename()]
        if report in names:
            assert _subject(message).startswith(SUBJECT)
            got.update(rcpts)
    return got


async def mail_audit(rt: Runtime) -> list[Any]:
    async with rt.sources.batchdb.sessions() as s:
        query = (
            sa.select(audit_log)
            .where(audit_log.c.event_action == "ANOMALY_REPORT_MAIL")
            .order_by(audit_log.c.seq)
        )
        return list((await s.execute(query)).all())


async def report_notices(rt: Runtime) -> Counter[str]:
    return Counter(
        e["destinataire"]
        for e in await events(rt.sources.batchdb)
        if e["type"] == "ALERTE_SYSTEME"
        and e["donnees"].get("evenement") == "ANOMALY_REPORT_GENERATED"
    )


async def ledger(rt: Runtime) -> set[str]:
    async with rt.sources.batchdb.sessions() as s:
        return set((await s.execute(sa.select(anomalie_signalee.c.record_key))).scalars())


def assert_failed_on_mail(execution: JobExecution, missed: list[str]) -> None:
    """FAILED in the report step only (a restart runs that step alone), naming who missed it."""
    assert execution.status is BatchStatus.FAILED
    steps = {s.step_name: s.status for s in execution.step_executions}
    assert steps.pop(REPORT_STEP) is BatchStatus.FAILED
    assert all(status is BatchStatus.COMPLETED for status in steps.values())
    text = execution.exit_status.exit_description
    assert f"not mailed to {len(missed)} of {len(ADMINS)} recipient(s)" in text
    assert "restart" in text
    for to in missed:
        assert to in text
    assert PASSWORD not in text


async def assert_later_run_reports_nothing_again(
    rt: Runtime, inbox: Inbox, known: set[str], new: dict[str, int]
) -> None:
    """A later run neither mails the report again nor reports its anomalies a second time;
    ``new`` is what it may find that the failed run could not settle."""
    received = reports_received(inbox)
    later = await _start(rt, at=RUN + timedelta(hours=1))
    assert later.status is BatchStatus.COMPLETED, later.exit_status
    found = {k: v for k, v in counts_of(later).items() if k.startswith("anomalies.")}
    assert found == new
    assert reports_received(inbox) == received
    assert await ledger(rt) == known


async def test_smtp_refusing_connections_fails_the_step_then_restart_mails_each_admin_once(
    runtime: Runtime, port: int
) -> None:
    failed = await _start(runtime)  # nothing listens on the SMTP port
    assert_failed_on_mail(failed, ADMINS)
    assert "connect" in failed.exit_status.exit_description.lower()
    rows = await mail_audit(runtime)
    assert sorted(r.status for r in rows) == ["FAILED"] * 3
    for r in rows:
        assert r.resource_path == REPORT and r.execution_id == failed.id
        assert "connect" in r.details.lower() and PASSWORD not in r.details
    assert sorted(next(a for a in ADMINS if a in r.details) for r in rows) == ADMINS
    # The anomalies are kept: the ledger has them, the report file is there, no
    # report notice yet (it commits with the step that completes).
    known = await ledger(runtime)
    assert known
    assert (runtime.settings.reports_dir / REPORT).exists()
    assert await report_notices(runtime) == Counter()

    with smtp_on(Inbox("127.0.0.1", port)) as inbox:  # the server is back
        done = await _restart(runtime, failed)
        assert done.status is BatchStatus.COMPLETED, done.exit_status
        assert [s.step_name for s in done.step_executions] == [REPORT_STEP]
        assert reports_received(inbox) == Counter(ADMINS)
        assert await report_notices(runtime) == Counter(ADMINS)
        sent = [r for r in await mail_audit(runtime) if r.status == "SENT"]
        assert sorted(r.details for r in sent) == [f"anomaly report sent to {a}" for a in ADMINS]
        assert all(r.execution_id == done.id for r in sent)

        # The old PENDING notification could not be re-sent with SMTP down (step 5 leaves
        # it PENDING); the later run re-sends it. Nothing else is found or reported again.
        await assert_later_run_reports_nothing_again(
            runtime, inbox, known, {"anomalies.notificationsEnAttente.corrected": 1}
        )
        assert reports_received(inbox) == Counter(ADMINS)


async def test_recipient_refused_then_accepted_no_admin_gets_the_report_twice(
    runtime: Runtime, port: int
) -> None:
    with smtp_on(Refusing("127.0.0.1", port)) as inbox:
        inbox.refused = {OPS}  # the server defers one mailbox
        failed = await _start(runtime)
        assert_failed_on_mail(failed, [OPS])
        assert "451" in failed.exit_status.exit_description
        assert reports_received(inbox) == Counter([ADMIN, OPS2])
        statuses = {
            next(a for a in ADMINS if a in r.details): r.status for r in await mail_audit(runtime)
        }
        assert statuses == {ADMIN: "SENT", OPS2: "SENT", OPS: "FAILED"}

        # Still deferring: the restart fails again and mails nobody twice.
        again = await _restart(runtime, failed)
        assert_failed_on_mail(again, [OPS])
        assert "2 earlier" in again.exit_status.exit_description
        assert reports_received(inbox) == Counter([ADMIN, OPS2])

        inbox.refused = set()  # SMTP fully back
        done = await _restart(runtime, again)
        assert done.status is BatchStatus.COMPLETED, done.exit_status
        assert reports_received(inbox) == Counter(ADMINS)
        assert await report_notices(runtime) == Counter(ADMINS)

        await assert_later_run_reports_nothing_again(runtime, inbox, await ledger(runtime), {})
        assert reports_received(inbox) == Counter(ADMINS)
