"""tokenCleanupJob on SQLite and on MariaDB: expired tokens go, valid ones stay, counts recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.doctoral.harness import Running
from tranche.batch import BatchStatus
from tranche.doctoral.audit import verify_chain
from tranche.doctoral.models import audit_log, job_execution_history
from tranche.doctoral.seed import Seeder
from tranche.doctoral.tables import userdb as U

RUN = datetime(2025, 3, 17, 2, 0, tzinfo=UTC)
NAIVE_RUN = RUN.replace(tzinfo=None)


async def _tokens(running: Running, expired: int, valid: int) -> tuple[set[int], set[int]]:
    """Users with one refresh token each, and as many reset tokens: ids of expired and valid."""
    db = running.runtime.sources.userdb
    gone, kept = set(), set()
    user_ids = await seeder(running).users(expired + valid, "ROLE_DOCTORANT")
    for n, uid in enumerate(user_ids):
        is_expired = n < expired
        # Expired: a second or more before the run; valid: at the run instant or later.
        when = (
            NAIVE_RUN - timedelta(seconds=1 + n)
            if is_expired
            else NAIVE_RUN + timedelta(minutes=n - expired)
        )
        async with db.transaction() as s:
            r = await s.execute(
                sa.insert(U.refresh_token).values(
                    user_id=uid, token=str(uuid.uuid4()), expiry_date=when
                )
            )
            await s.execute(
                sa.insert(U.password_reset_tokens).values(
                    token=str(uuid.uuid4()),
                    user_id=uid,
                    expiration_date=when,
                    used=is_expired and n % 2 == 0,
                )
            )
        (gone if is_expired else kept).add(int(r.inserted_primary_key[0]))  # type: ignore[index]
    return gone, kept


def seeder(running: Running) -> Seeder:
    src = running.runtime.sources
    return Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, RUN)


async def _ids(running: Running, table: sa.Table) -> set[int]:
    async with running.runtime.sources.userdb.sessions() as s:
        return set((await s.execute(sa.select(table.c.id))).scalars())


async def test_expired_tokens_go_valid_ones_stay(make_runtime: Any) -> None:
    running: Running = await make_runtime()
    runtime = running.runtime
    gone, kept = await _tokens(running, expired=230, valid=20)
    before_reset = await _ids(running, U.password_reset_tokens)

    spec = runtime.spec("tokenCleanupJob")
    execution = await runtime.launcher.run(spec.job, runtime.parameters("pytest", at=RUN))

    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    remaining = await _ids(running, U.refresh_token)
    assert kept <= remaining and not (gone & remaining)
    assert len(await _ids(running, U.password_reset_tokens)) == len(before_reset) - 230
    # Chunks of 100: 230 expired rows make three chunks per step.
    refresh_step, reset_step = execution.step_executions
    assert (refresh_step.read_count, refresh_step.commit_count) == (230, 3)
    assert reset_step.write_count == 230

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
    assert history.status == "COMPLETED"
    assert history.items_processed == 460
    assert history.counts == {"refreshTokensDeleted": 230, "passwordResetTokensDeleted": 230}
    assert history.triggered_by == "pytest"
    assert (audit.event_type, audit.status) == ("JOB_EXECUTION", "COMPLETED")
    assert (await verify_chain(runtime.sources.batchdb)).ok

    # One second later only the tokens expiring exactly at the first run's instant are due.
    again = await runtime.launcher.run(
        spec.job, runtime.parameters("pytest", at=RUN + timedelta(seconds=1))
    )
    assert again.status is BatchStatus.COMPLETED
    assert [s.write_count for s in again.step_executions] == [1, 1]
    assert len(kept - await _ids(running, U.refresh_token)) == 1


async def test_failed_run_restarts_after_its_completed_step(sqlite_databases: Any) -> None:
    """Step 2's table is missing: FAILED; once it is back, a restart runs step 2 only."""
    from prometheus_client import CollectorRegistry

    from tranche.doctoral.runtime import Runtime

    runtime = Runtime.build(sqlite_databases.settings(), CollectorRegistry())
    try:
        userdb = runtime.sources.userdb
        src = runtime.sources
        seeder = Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, RUN)
        await seeder.tokens(await seeder.users(40, "ROLE_DOCTORANT"), expired_share=1.0)
        async with userdb.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE password_reset_tokens RENAME TO prt_away"))
        spec = runtime.spec("tokenCleanupJob")
        failed = await runtime.launcher.run(spec.job, runtime.parameters("pytest", at=RUN))
        assert failed.status is BatchStatus.FAILED
        assert [s.status for s in failed.step_executions] == [
            BatchStatus.COMPLETED,
            BatchStatus.FAILED,
        ]
        async with userdb.engine.begin() as conn:
            await conn.execute(sa.text("ALTER TABLE prt_away RENAME TO password_reset_tokens"))

        new_id = await runtime.launcher.restart(failed.id)
        resumed = await runtime.launcher.wait(new_id)
        assert resumed.status is BatchStatus.COMPLETED
        assert [s.step_name for s in resumed.step_executions] == ["cleanupPasswordResetTokensStep"]
        assert await _ids_in(userdb, U.password_reset_tokens) == set()
        # The restart keeps the first attempt's instant, so it deletes what that one would have.
        assert resumed.parameters == failed.parameters
    finally:
        await runtime.close()


async def _ids_in(db: Any, table: sa.Table) -> set[int]:
    async with db.sessions() as s:
        return set((await s.execute(sa.select(table.c.id))).scalars())
