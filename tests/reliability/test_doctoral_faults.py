"""Doctoral jobs on the real MariaDB under faults: killed connections, the server gone.

A MariaDB restart, played without restarting the shared server: every connection of
the job's databases is killed (``KILL CONNECTION``) round after round while the job
runs, and a loopback proxy in front of MariaDB is cut (every connection reset, new ones
refused) and restored. The job retries or ends FAILED with a message naming the cause;
restarting it completes, and every item was handled once: each expired token deleted
(and counted) once, each duration alert recorded and its events written once.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.doctoral.factories import SECRET, admin_token, opened
from tests.doctoral.harness import FIELDS, Databases
from tests.fixtures.servers import MARIADB_HOST, MARIADB_PORT
from tests.fixtures.smtp import Inbox
from tests.fixtures.tcp_proxy import TcpProxy, tcp_proxy
from tests.reliability.doctoral_world import (
    RUN,
    Killer,
    alert_events,
    database_names,
    mariadb_admin,
    mariadb_world,
    seed_alerts,
    seed_tokens,
    token_counts,
)
from tranche.batch import (
    BatchListener,
    BatchSettings,
    BatchStatus,
    JobExecution,
    JobRepository,
    StepContext,
    StepExecution,
)
from tranche.core.broker import free_port
from tranche.core.outbox import outbox_table
from tranche.core.settings import KafkaSettings
from tranche.doctoral.app import create_app
from tranche.doctoral.jobs.common import COUNTS_KEY
from tranche.doctoral.mail import MailError
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime

TOKENS = "tokenCleanupJob"
ALERTS = "dureeDoctoratAlertJob"
ADMIN = "exploitation@univ-exemple.fr"


@pytest.fixture
async def world() -> AsyncIterator[Databases]:
    """Fresh databases per test: the seeders' fixed random seed repeats its tokens."""
    async with mariadb_world() as databases:
        yield databases


def build(databases: Databases, listeners: Any = (), **overrides: Any) -> Runtime:
    settings = databases.settings(
        batch=BatchSettings(scheduler_enabled=False),
        token_cleanup_chunk_size=10,
        duree_alert_chunk_size=5,
        job_retry_attempts=4,
        job_retry_initial_backoff_s=0.02,
        job_retry_max_backoff_s=0.2,
        **overrides,
    )
    return Runtime.build(settings, CollectorRegistry(), listeners=listeners)


async def run_to_completion(
    runtime: Runtime, job: str, restarts: int = 10, killer: Killer | None = None
) -> tuple[JobExecution, list[JobExecution]]:
    """Start ``job`` at RUN (then the killer, if any) and restart it while it fails; (last,
    every attempt). The killer stops when the first attempt ends; restarts run without it."""
    started = await runtime.start(job, "pytest", at=RUN)
    if killer is not None:
        killer.start(every_s=0.005, rounds=15)
    execution = await runtime.launcher.wait(started)
    if killer is not None:
        await killer.stop()
    attempts = [execution]
    while execution.status is BatchStatus.FAILED and len(attempts) <= restarts:
        execution = await runtime.launcher.wait(await runtime.launcher.restart(execution.id))
        attempts.append(execution)
    return execution, attempts


def assert_clean_failures(attempts: list[JobExecution]) -> None:
    """Every failed attempt says, on one line, that a database connection was the cause."""
    for failed in attempts[:-1]:
        assert failed.status is BatchStatus.FAILED
        text = failed.exit_status.exit_description
        assert "\n" not in text and len(text) < 1000, text
        assert any(
            word in text.lower()
            for word in ("connect", "lost", "gone away", "killed", "unreachable")
        ), text


def total_counts(execution: JobExecution) -> dict[str, int]:
    return {str(k): int(v) for k, v in execution.context.get(COUNTS_KEY, {}).items()}


async def test_connections_killed_during_token_cleanup(world: Databases) -> None:
    runtime = build(world)
    try:
        expired, valid = await seed_tokens(runtime, 400)
        async with mariadb_admin() as admin:
            killer = Killer(admin, database_names(world))
            try:
                execution, attempts = await run_to_completion(runtime, TOKENS, killer=killer)
            finally:
                await killer.stop()
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert_clean_failures(attempts)
        assert await token_counts(runtime) == (0, valid)
        counts = total_counts(execution)
        # Deleted once each: the counts are what was really deleted, over every attempt.
        assert counts["refreshTokensDeleted"] + counts["passwordResetTokensDeleted"] == expired
        steps = [s for a in attempts for s in a.step_executions]
        print(
            f"FIGURE doctoral kill tokens: {expired} expired tokens, {killer.killed} connections "
            f"killed ({killer.in_transaction} mid-transaction) in {killer.rounds} rounds, "
            f"{sum(s.rollback_count for s in steps)} chunk rollbacks, {len(attempts)} "
            f"execution(s), {expired} deleted once, {valid} valid kept"
        )
        for failed in attempts[:-1]:
            print(f"FIGURE   failed attempt: {failed.exit_status.exit_description}")
    finally:
        await runtime.close()


async def test_connections_killed_during_duration_alerts(world: Databases) -> None:
    runtime = build(world)
    try:
        await seed_alerts(runtime, 120)
        async with mariadb_admin() as admin:
            killer = Killer(admin, database_names(world))
            try:
                execution, attempts = await run_to_completion(runtime, ALERTS, killer=killer)
            finally:
                await killer.stop()
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert_clean_failures(attempts)
        events, ledger = await alert_events(runtime)
        twice = {k: n for k, n in Counter(events).items() if n > 1}
        assert not twice, twice
        assert events and ledger == len({(i, t) for i, _, t in events})
        # Nothing missed: a fault-free run afterwards finds nothing left to send.
        again = await runtime.launcher.wait(
            await runtime.start(ALERTS, "pytest", at=RUN, extra={"run.id": 2})
        )
        assert again.status is BatchStatus.COMPLETED
        assert (await alert_events(runtime))[0] == events
        print(
            f"FIGURE doctoral kill alerts: {len(events)} alert events, {ledger} ledger rows, "
            f"{killer.killed} connections killed ({killer.in_transaction} mid-transaction), "
            f"{len(attempts)} execution(s), 0 duplicated, 0 missed"
        )
        for failed in attempts[:-1]:
            print(f"FIGURE   failed attempt: {failed.exit_status.exit_description}")
    finally:
        await runtime.close()


class StepEnds(BatchListener):
    """Cuts the proxy after the job's third committed chunk (mid-step, deterministically);
    sees the step end in memory, before the engine records it in batchdb."""

    def __init__(self) -> None:
        self.failed = asyncio.Event()
        self.proxy: TcpProxy | None = None
        self.chunks = 0

    async def after_chunk(self, ctx: StepContext) -> None:
        self.chunks += 1
        if self.chunks == 3 and self.proxy is not None:
            await self.proxy.cut()

    async def after_step(self, step: StepExecution) -> None:
        if step.status is BatchStatus.FAILED:
            self.failed.set()


async def test_mariadb_unreachable_then_back(world: Databases) -> None:
    """Through a proxy: every connection reset and new ones refused mid-job, for longer than
    the chunk's retries; the job gives up, records FAILED once MariaDB is back, and its
    restart deletes the rest, each token once."""
    probe = StepEnds()
    async with tcp_proxy(MARIADB_HOST, MARIADB_PORT) as proxy:
        hop = f"{proxy.host}:{proxy.port}"
        proxied = Databases(
            "mariadb",
            {n: u.replace(f"{MARIADB_HOST}:{MARIADB_PORT}", hop) for n, u in world.urls.items()},
        )
        runtime = build(proxied, listeners=[probe])
        try:
            expired, valid = await seed_tokens(runtime, 300)
            probe.proxy = proxy
            started = await runtime.start(TOKENS, "pytest", at=RUN)
            await asyncio.wait_for(probe.failed.wait(), 60)  # retries spent while it is down
            await proxy.restore()
            failed = await runtime.launcher.wait(started)
            assert failed.status is BatchStatus.FAILED
            stored = await runtime.repository.require_job_execution(started)
            assert stored.status is BatchStatus.FAILED  # recorded, lock released
            assert_clean_failures([failed, failed])
            left, _ = await token_counts(runtime)
            assert 0 < left < expired
            execution = await runtime.launcher.wait(await runtime.launcher.restart(failed.id))
            assert execution.status is BatchStatus.COMPLETED, execution.exit_status
            assert await token_counts(runtime) == (0, valid)
            counts = total_counts(execution)
            assert counts["refreshTokensDeleted"] + counts["passwordResetTokensDeleted"] == expired
            print(
                f"FIGURE doctoral mariadb unreachable: cut with {expired - left}/{expired} "
                f"deleted; FAILED ({failed.exit_status.exit_description[:90]}…); restart "
                f"completed: {expired} deleted once, {valid} kept"
            )
        finally:
            await runtime.close()


# ---------------------------------------------------------------- SMTP down


async def test_failure_mail_with_smtp_down_is_recorded_not_lost(
    sqlite_databases: Databases, tmp_path: Path
) -> None:
    """A failed run's mail cannot be sent: the failure event (through Kafka) is still
    queued for every admin, and the unsent mail is an audit row naming who missed it."""
    dead = free_port()  # nothing listens there: the mail server is down
    runtime = build(
        sqlite_databases,
        user_db_url=f"sqlite+aiosqlite:///{tmp_path / 'empty-userdb.db'}",  # job fails
        admin_emails=[ADMIN],
        smtp_host="127.0.0.1",
        smtp_port=dead,
        mail_from="batch@univ-exemple.fr",
    )
    try:
        execution = await runtime.launcher.wait(await runtime.start(TOKENS, "pytest", at=RUN))
        assert execution.status is BatchStatus.FAILED
        async with runtime.sources.batchdb.sessions() as s:
            payloads = (await s.execute(sa.select(outbox_table.c.payload))).scalars().all()
            audit = (
                await s.execute(
                    sa.select(audit_log).where(audit_log.c.event_action == "FAILURE_MAIL")
                )
            ).all()
        events = [json.loads(p) for p in payloads]
        assert [e["destinataire"] for e in events] == [ADMIN]
        assert events[0]["donnees"]["executionId"] == execution.id
        [row] = audit
        assert row.status == "FAILED" and row.execution_id == execution.id
        assert ADMIN in row.details and "connect" in row.details.lower()
        with pytest.raises(MailError):
            await runtime.mailer.health()  # what /actuator/health shows as DEGRADED
    finally:
        await runtime.close()


@pytest.mark.kafka
async def test_health_says_degraded_not_down_while_smtp_is_down(
    sqlite_databases: Databases, kafka_bootstrap: str, smtp_server: Inbox
) -> None:
    """SMTP is not essential: /actuator/health and readiness stay UP (200) with the mail
    component DEGRADED and its error (for admins); with the server up it is UP."""
    headers = {"Authorization": f"Bearer {admin_token()}"}
    seen: dict[str, Any] = {}
    for name, port in (("down", free_port()), ("up", smtp_server.port)):
        settings = sqlite_databases.settings(
            batch=BatchSettings(scheduler_enabled=False),
            kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False),
            smtp_host="127.0.0.1",
            smtp_port=port,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://batch") as c:
                health = await c.get("/actuator/health", headers=headers)
                ready = await c.get("/actuator/health/readiness")
        assert (health.status_code, ready.status_code) == (200, 200), health.text
        assert health.json()["status"] == "UP" and ready.json()["status"] == "UP"
        seen[name] = health.json()["components"]["mail"]
    assert seen["down"]["status"] == "DEGRADED"
    assert "refused" in seen["down"]["details"]["error"].lower() or "connect" in str(seen)
    assert seen["up"]["status"] == "UP"
    print(f"FIGURE doctoral smtp down: health 200 UP, mail {seen['down']['status']}")


#: No broker, no SMTP server: the report is written, its event queued, its mail skipped.
UNSET = ("KAFKA_BOOTSTRAP_SERVERS", "DOCTORAL_SMTP_HOST")
#: Bytes a file of the report run may grow to: below any monthly report PDF (tens of KB).
FSIZE_LIMIT = 4096


def _file_size_limited() -> None:
    """In the child: files cannot grow past FSIZE_LIMIT; writes fail with EFBIG instead of
    the default SIGXFSZ kill — a full disk, as a write sees it (ENOSPC is handled alike)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


async def run_report_cli(world: Databases, data_dir: Path, limited: bool) -> tuple[int, str]:
    """``tranche job run monthlyReportJob --month 2025-02`` in a child on the test's MariaDB."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in UNSET},
        **{f"DOCTORAL_{FIELDS[name].upper()}": url for name, url in world.urls.items()},
        "DOCTORAL_DATA_DIR": str(data_dir),
        "DOCTORAL_LOG_JSON": "false",
        "JWT_SECRET": SECRET,
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
    }
    child = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tranche"),
        *("job", "run", "monthlyReportJob", "--month", "2025-02"),
        env=env,
        cwd=data_dir,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_file_size_limited if limited else None,
    )
    out, _ = await child.communicate()
    return int(child.returncode or 0), out.decode(errors="replace")


async def test_disk_full_while_writing_the_monthly_report(world: Databases, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    previous = reports / "rapport_2025_02.pdf"
    previous.write_bytes(b"%PDF-1.4 the report of an earlier run")
    code, output = await run_report_cli(world, tmp_path, limited=True)
    assert code != 0, output
    async with opened(world.urls["batchdb"], "batchdb") as batchdb:
        repository = JobRepository(batchdb.engine)
        (failed,) = await repository.find_job_executions("monthlyReportJob", limit=10)
        assert failed.status is BatchStatus.FAILED
        message = failed.exit_status.exit_description
        assert str(previous) in message and "File too large" in message, message
        assert "disk is full" in message and "\n" not in message, message
        # The earlier report untouched, no partial file under any name.
        assert previous.read_bytes() == b"%PDF-1.4 the report of an earlier run"
        assert [p.name for p in reports.iterdir()] == ["rapport_2025_02.pdf"]

        code, output = await run_report_cli(world, tmp_path, limited=False)
        assert code == 0, output
        executions = await repository.find_job_executions("monthlyReportJob", limit=10)
    assert executions[0].status is BatchStatus.COMPLETED, executions[0].exit_status
    written = previous.read_bytes()
    assert written.startswith(b"%PDF") and len(written) > FSIZE_LIMIT
    assert [p.name for p in reports.iterdir()] == ["rapport_2025_02.pdf"]
    print(
        f"FIGURE doctoral report disk full: FAILED with '{message}'; earlier file untouched, "
        f"no temporary left; the next run COMPLETED ({len(written)} bytes)"
    )
