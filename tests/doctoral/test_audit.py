"""The audit log is append-only on every engine and its hash chain exposes tampering."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.doctoral.factories import opened
from tranche.core.migrations import upgrade
from tranche.doctoral.audit import AuditEvent, AuditEventType, AuditLog, verify_chain


def clock() -> datetime:
    return datetime.now(UTC)


def event(n: int) -> AuditEvent:
    return AuditEvent(
        AuditEventType.MANUAL_TRIGGER,
        "RUN",
        "ACCEPTED",
        job_name="tokenCleanupJob",
        execution_id=n,
        user_id="admin@univ.fr",
        user_role="ROLE_ADMIN",
        resource_path="/api/batch/jobs/tokenCleanupJob/run",
        details=f"trigger n°{n} — données accentuées",
        ip_address="127.0.0.1",
        user_agent="pytest",
    )


async def test_append_only_and_tamper_evident(any_database_url: str) -> None:
    await upgrade("doctoral", any_database_url)
    async with opened(any_database_url) as db:
        # Two writers, as two replicas would be, appending at the same time.
        a, b = AuditLog(db, clock), AuditLog(db, clock)
        seqs = await asyncio.gather(*(w.record(event(i)) for i in range(6) for w in (a, b)))
        assert sorted(seqs) == list(range(1, 13))
        report = await verify_chain(db)
        assert report.ok and report.rows == 12

        for statement in (
            "UPDATE audit_log SET details = 'rewritten' WHERE seq = 3",
            "DELETE FROM audit_log WHERE seq = 12",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.transaction() as s:
                    await s.execute(sa.text(statement))
        assert (await verify_chain(db)).ok

        # Someone with DBA rights drops the triggers and edits a row: the chain shows where.
        dialect = db.dialect
        async with db.engine.begin() as conn:
            if dialect == "postgresql":
                await conn.execute(sa.text("DROP TRIGGER audit_log_no_update_delete ON audit_log"))
            else:
                await conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
                await conn.execute(sa.text("DROP TRIGGER audit_log_no_delete"))
            await conn.execute(sa.text("UPDATE audit_log SET user_id = 'x@y.fr' WHERE seq = 5"))
        report = await verify_chain(db)
        assert not report.ok
        assert report.broken_seq == 5
        assert report.reason == "row content does not match its hash"

        async with db.engine.begin() as conn:
            await conn.execute(sa.text("DELETE FROM audit_log WHERE seq IN (5, 6)"))
        report = await verify_chain(db)
        assert (report.broken_seq, report.reason) == (5, "row 5 is missing")


async def test_an_event_recorded_once_is_not_appended_again_by_a_retry(
    any_database_url: str,
) -> None:
    """A run's end is retried through lost connections; the try after a COMMIT that landed
    (its answer lost) finds its row instead of auditing the run twice."""
    await upgrade("doctoral", any_database_url)
    async with opened(any_database_url) as db:
        audit = AuditLog(db, clock)
        first = await audit.record(event(7), once=True)
        assert await audit.record(event(7), once=True) == first
        other = await audit.record(event(8), once=True)
        # Without ``once`` (an admin pressing Run twice), both are kept.
        await audit.record(event(9))
        await audit.record(event(9))
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT execution_id FROM audit_log ORDER BY seq"))
            ).all()
        assert [r[0] for r in rows] == [7, 8, 9, 9]
        assert other == first + 1
        assert (await verify_chain(db)).ok
