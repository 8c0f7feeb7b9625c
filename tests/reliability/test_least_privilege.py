"""The doctoral service under the runbook's least-privilege batchdb grants, on MariaDB.

The grants are read from ``docs/runbook.md`` itself (the ``Doctoral batchdb`` block), so
the test checks what operators are told to run, not a copy of it. A fresh MariaDB user
gets exactly those grants on the test's batchdb; the service's batchdb connections use
that user. A job runs, its audit rows are written, and the same user is refused
``UPDATE`` / ``DELETE`` on ``audit_log`` by the server's privilege check (error 1142),
before any trigger is reached.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncmy
import pytest
import sqlalchemy as sa
from asyncmy.errors import OperationalError, ProgrammingError
from prometheus_client import CollectorRegistry

from tests.doctoral.archive.data import KEY
from tests.doctoral.harness import Databases
from tests.fixtures.servers import MARIADB_HOST, MARIADB_PORT
from tests.fixtures.smtp import Inbox
from tests.reliability.doctoral_world import (
    RUN,
    mariadb_admin,
    mariadb_world,
    seed_tokens,
    seeder,
    token_counts,
)
from tranche.batch import BatchSettings, BatchStatus
from tranche.doctoral.audit import verify_chain
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.tables.userdb import AUDIT_ACTIONS, user_audits

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
#: MariaDB's ER_TABLEACCESS_DENIED_ERROR: "command denied to user ... for table ...".
DENIED = 1142
TABLE = re.compile(r" ON batchdb\.(\w+) ")
DATABASE = re.compile(r"\b(batchdb|userdb|inscription_db|defensedb|notification_db)\.")
OWNERS = "Doctoral owners' databases"


def documented_grants(heading: str = "Doctoral batchdb") -> list[str]:
    """The ``GRANT`` statements of the runbook's block under ``heading``, one per statement."""
    text = RUNBOOK.read_text(encoding="utf-8")
    block = re.search(re.escape(heading) + r".*?```sql\n(.*?)```", text, re.S)
    assert block is not None, f"runbook: no {heading} grants block"
    lines = [line.split("--", 1)[0] for line in block.group(1).splitlines()]
    statements = [" ".join(s.split()) for s in " ".join(lines).split(";")]
    return [g for g in statements if g.startswith("GRANT ")]


def for_test(grant: str, names: dict[str, str], user: str) -> str:
    """``grant`` with the runbook's database and account names replaced by the test's."""
    grant = DATABASE.sub(lambda m: f"`{names[m.group(1)]}`.", grant)
    return grant.replace("'batch'@'%'", f"'{user}'@'%'")


@pytest.fixture
async def world() -> AsyncIterator[Databases]:
    async with mariadb_world() as databases:
        yield databases


@pytest.fixture
async def restricted(world: Databases) -> AsyncIterator[tuple[str, str]]:
    """A user with exactly the documented grants on this test's batchdb; (user, password)."""
    name = urlsplit(world.urls["batchdb"]).path.lstrip("/")
    user, password = f"lp_{secrets.token_hex(6)}", secrets.token_hex(16)
    async with mariadb_admin() as admin, admin.cursor() as cur:
        await cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        try:
            for grant in documented_grants():
                await cur.execute(for_test(grant, {"batchdb": name}, user))
            yield user, password
        finally:
            await cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")


async def test_job_and_audit_under_least_privilege(
    world: Databases, restricted: tuple[str, str]
) -> None:
    user, password = restricted
    name = urlsplit(world.urls["batchdb"]).path.lstrip("/")
    async with mariadb_admin() as admin, admin.cursor() as cur:
        await cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (name,)
        )
        migrated = {str(r[0]) for r in await cur.fetchall()}
    documented = {m.group(1) for g in documented_grants() if (m := TABLE.search(g))}
    assert "audit_log" in documented
    # The migration account's own bookkeeping table is not the service's business.
    assert migrated - documented == {"alembic_version_doctoral"}, migrated - documented

    url = sa.make_url(world.urls["batchdb"]).set(username=user, password=password)
    urls = {**world.urls, "batchdb": url.render_as_string(hide_password=False)}
    settings = Databases(world.kind, urls).settings(
        batch=BatchSettings(scheduler_enabled=False), token_cleanup_chunk_size=10
    )
    runtime = Runtime.build(settings, CollectorRegistry())
    try:
        expired, valid = await seed_tokens(runtime, 60)
        execution = await runtime.launcher.wait(
            await runtime.start("tokenCleanupJob", "pytest", at=RUN)
        )
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert await token_counts(runtime) == (0, valid)
        async with runtime.sources.batchdb.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(audit_log.c.event_type, audit_log.c.job_name).where(
                        audit_log.c.execution_id == execution.id
                    )
                )
            ).all()
        assert rows and all(r.job_name == "tokenCleanupJob" for r in rows), rows
        # Reading the chain back (as the console does) needs only SELECT.
        chain = await verify_chain(runtime.sources.batchdb)
        assert chain.ok, chain
    finally:
        await runtime.close()

    conn = await asyncmy.connect(
        host=MARIADB_HOST, port=MARIADB_PORT, user=user, password=password, db=name
    )
    try:
        async with conn.cursor() as cur:
            for statement in (
                "UPDATE audit_log SET status = 'FORGED'",
                "DELETE FROM audit_log",
                "TRUNCATE TABLE audit_log",
                "DROP TABLE audit_log",
            ):
                with pytest.raises((OperationalError, ProgrammingError)) as refused:
                    await cur.execute(statement)
                assert refused.value.args[0] == DENIED, (statement, refused.value.args)
            await cur.execute("SELECT COUNT(*) FROM audit_log")
            (count,) = await cur.fetchone()
    finally:
        conn.close()
    assert count >= len(rows) >= 1
    print(
        f"FIGURE least privilege: tokenCleanupJob COMPLETED as {user} ({expired} expired "
        f"deleted, {valid} kept), {count} audit rows written; UPDATE/DELETE/TRUNCATE/DROP "
        f"on audit_log refused with {DENIED}"
    )


OLD_AUDITS = 7
JOBS = (
    "tokenCleanupJob",
    "dureeDoctoratAlertJob",
    "monthlyReportJob",
    "dataConsistencyJob",
    "archiveJob",
)


async def test_every_job_under_least_privilege_on_every_database(
    world: Databases, tmp_path: Path, smtp_server: Inbox
) -> None:
    """All five jobs as one user holding only the runbook's batchdb and owners' blocks, on all
    five databases; the writes the blocks do not grant are refused."""
    names = {db: urlsplit(url).path.lstrip("/") for db, url in world.urls.items()}
    files = {
        "archive_keys": {"k1": KEY},
        "archives_dir": tmp_path / "archives",
        "uploads_dir": tmp_path / "uploads",
        "pv_storage_dir": tmp_path / "pv",
        "reports_dir": tmp_path / "reports",
        # A real SMTP server: the report is mailed (report_deliveries) and stuck
        # notifications are re-sent (the owner's row updated).
        "smtp_host": smtp_server.host,
        "smtp_port": smtp_server.port,
        "user_audit_retention_days": 1,
        "batch": BatchSettings(scheduler_enabled=False),
    }
    seeding = Runtime.build(world.settings(**files), CollectorRegistry())
    try:
        seeded = (await seeder(seeding).demo(1, (tmp_path / "uploads", tmp_path / "pv"))).counts
        async with seeding.sources.userdb.transaction() as s:  # two years old: purged
            old = {"action": AUDIT_ACTIONS[0], "timestamp": datetime(2023, 1, 1)}
            await s.execute(sa.insert(user_audits), [{"user_id": 1, **old}] * OLD_AUDITS)
    finally:
        await seeding.close()

    user, password = f"lp_{secrets.token_hex(6)}", secrets.token_hex(16)
    grants = documented_grants() + documented_grants(OWNERS)
    async with mariadb_admin() as admin, admin.cursor() as cur:
        await cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        try:
            for grant in grants:
                await cur.execute(for_test(grant, names, user))
            urls = {
                db: sa.make_url(url)
                .set(username=user, password=password)
                .render_as_string(hide_password=False)
                for db, url in world.urls.items()
            }
            runtime = Runtime.build(
                Databases(world.kind, urls).settings(**files), CollectorRegistry()
            )
            ran: dict[str, dict[str, int]] = {}
            try:
                for job in JOBS:
                    execution = await runtime.launcher.wait(
                        await runtime.start(job, "pytest", at=RUN)
                    )
                    assert execution.status is BatchStatus.COMPLETED, (job, execution.exit_status)
                    ran[job] = counts_of(execution)
            finally:
                await runtime.close()
            refused = await assert_refused(user, password, names)
        finally:
            await cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    # Each job did its writes on the owners' databases, not only its reads.
    for job, count in (
        ("tokenCleanupJob", "refreshTokensDeleted"),  # userdb DELETE
        ("tokenCleanupJob", "passwordResetTokensDeleted"),
        ("dureeDoctoratAlertJob", "alertesEnregistrees"),  # inscription_db INSERT
        ("dureeDoctoratAlertJob", "reinscriptionsBloquees"),  # inscription_db UPDATE (column)
        ("monthlyReportJob", "pdfBytes"),
        ("dataConsistencyJob", "anomalies.roles.corrected"),  # user_roles, user_audits
        ("dataConsistencyJob", "anomalies.utilisateurInexistant.corrected"),
        ("archiveJob", "enrollmentsArchived"),
        ("archiveJob", "notificationsDeleted"),  # notification_db DELETE, OPTIMIZE
        ("monthlyReportJob", "mail.sent"),  # report_deliveries
        ("dataConsistencyJob", "anomalies.notificationsEnAttente.corrected"),  # UPDATE (columns)
    ):
        assert ran[job].get(count, 0) > 0, (job, count, ran[job])
    assert ran["archiveJob"].get("userAuditsDeleted") == OLD_AUDITS, ran["archiveJob"]
    print(f"FIGURE least privilege all jobs: seeded {seeded}")
    for job, counts in ran.items():
        print(f"FIGURE least privilege all jobs: {job} COMPLETED as {user}: {counts}")
    print(f"FIGURE least privilege all jobs: refused with {DENIED}: {refused}")


async def assert_refused(user: str, password: str, names: dict[str, str]) -> list[str]:
    """Writes the blocks do not grant, each refused by the privilege check (1142)."""
    statements = [
        ("userdb", "DELETE FROM users"),
        ("userdb", "UPDATE roles SET name = 'ROLE_FORGED'"),
        ("userdb", "INSERT INTO refresh_token (id) VALUES (-1)"),
        ("inscription_db", "DELETE FROM inscriptions"),
        ("inscription_db", "DELETE FROM alertes_duree"),
        ("defensedb", "DELETE FROM defenses"),
        ("notification_db", "DELETE FROM notification_dlq"),
        ("batchdb", "DELETE FROM audit_log"),
        ("userdb", "DROP TABLE user_roles"),
    ]
    out = []
    for db, statement in statements:
        conn = await asyncmy.connect(
            host=MARIADB_HOST, port=MARIADB_PORT, user=user, password=password, db=names[db]
        )
        try:
            async with conn.cursor() as cur:
                with pytest.raises((OperationalError, ProgrammingError)) as refused:
                    await cur.execute(statement)
                assert refused.value.args[0] == DENIED, (db, statement, refused.value.args)
        finally:
            conn.close()
        out.append(f"{db}: {statement}")
    return out
