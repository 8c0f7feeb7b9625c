"""A real lock held in userdb makes tokenCleanupJob's delete time out; the chunk is retried.

Another connection holds the rows (MariaDB, PostgreSQL: ``SELECT … FOR UPDATE``; SQLite:
the write lock) and the job's connections wait only briefly (lock wait timeout 1 s,
``lock_timeout`` 1 s, ``busy_timeout`` 300 ms), so its first write fails with the
engine's own transient error. The holder lets go once the job saw that failure; the
retried chunk then deletes every expired token, once, and the execution completes.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from tests.doctoral.factories import opened
from tests.doctoral.harness import Databases, Running
from tranche.batch import BatchListener, BatchStatus, StepContext
from tranche.batch.transient import is_transient_db_error
from tranche.doctoral.tables import userdb as U

RUN = datetime(2025, 6, 2, 2, 0, tzinfo=UTC)

_SHORT_WAIT = {
    "sqlite": "PRAGMA busy_timeout=300",
    "mariadb": "SET SESSION innodb_lock_wait_timeout = 1",
    "postgres": "SET lock_timeout = '1s'",
}


class SeesErrors(BatchListener):
    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.failed_once = asyncio.Event()

    async def after_chunk_error(self, ctx: StepContext, error: BaseException) -> None:
        self.errors.append(error)
        self.failed_once.set()


async def test_a_lock_timeout_is_retried_and_the_job_completes(
    databases: Databases, make_runtime: Any
) -> None:
    probe = SeesErrors()
    running: Running = await make_runtime(
        listeners=[probe], job_retry_attempts=6, job_retry_initial_backoff_s=0.05
    )
    runtime = running.runtime

    def short_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(_SHORT_WAIT[databases.kind])
        cursor.close()

    event.listen(runtime.sources.userdb.engine.sync_engine, "connect", short_wait)
    owner = await running.portal.user()
    expired = RUN.replace(tzinfo=None) - timedelta(days=3)
    async with runtime.sources.userdb.transaction() as s:
        # One refresh token per user (the owner's 1:1), so one more user per token.
        await s.execute(
            sa.insert(U.refresh_token),
            [{"user_id": owner, "token": f"tok-lock-{RUN:%s}", "expiry_date": expired}],
        )
    ids = [owner]

    async with opened(databases.urls["userdb"], "holder") as holder:
        async with holder.engine.connect() as conn:
            tx = await conn.begin()
            if databases.kind == "sqlite":
                # Any write takes SQLite's database-wide write lock until the rollback.
                await conn.execute(
                    sa.update(U.users).where(U.users.c.id.in_(ids)).values(ville="Rabat")
                )
            else:
                await conn.execute(
                    sa.select(U.refresh_token.c.id)
                    .where(U.refresh_token.c.user_id.in_(ids))
                    .with_for_update()
                )
            execution_id = await runtime.start("tokenCleanupJob", "pytest", at=RUN)
            await asyncio.wait_for(probe.failed_once.wait(), timeout=60)
            await tx.rollback()
        execution = await runtime.launcher.wait(execution_id)

    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert probe.errors and all(is_transient_db_error(e) for e in probe.errors)
    refresh = execution.step_executions[0]
    assert refresh.rollback_count == len(probe.errors) >= 1
    assert refresh.write_skip_count == 0
    async with runtime.sources.userdb.sessions() as s:
        left = (
            await s.execute(
                sa.select(sa.func.count())
                .select_from(U.refresh_token)
                .where(U.refresh_token.c.expiry_date < RUN.replace(tzinfo=None))
            )
        ).scalar_one()
    assert left == 0
