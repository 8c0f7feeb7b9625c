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
from pathlib import Path
from urllib.parse import urlsplit

import asyncmy
import pytest
import sqlalchemy as sa
from asyncmy.errors import OperationalError, ProgrammingError
from prometheus_client import CollectorRegistry

from tests.doctoral.harness import Databases
from tests.fixtures.servers import MARIADB_HOST, MARIADB_PORT
from tests.reliability.doctoral_world import (
    RUN,
    mariadb_admin,
    mariadb_world,
    seed_tokens,
    token_counts,
)
from tranche.batch import BatchSettings, BatchStatus
from tranche.doctoral.audit import verify_chain
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
#: MariaDB's ER_TABLEACCESS_DENIED_ERROR: "command denied to user ... for table ...".
DENIED = 1142
TABLE = re.compile(r" ON batchdb\.(\w+) ")


def documented_grants() -> list[str]:
    """The ``GRANT`` statements of the runbook's batchdb block, one per statement."""
    text = RUNBOOK.read_text(encoding="utf-8")
    block = re.search(r"Doctoral batchdb.*?```sql\n(.*?)```", text, re.S)
    assert block is not None, "runbook: no Doctoral batchdb grants block"
    grants = [line.strip().rstrip(";") for line in block.group(1).splitlines()]
    return [g for g in grants if g.startswith("GRANT ")]


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
                await cur.execute(
                    grant.replace("batchdb.", f"`{name}`.").replace("'batch'@'%'", f"'{user}'@'%'")
                )
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
