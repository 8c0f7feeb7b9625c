"""tokenCleanupJob: delete user-service's expired refresh and password-reset tokens.

user-service never purges them (its 02:00 reset-token purge is never scheduled
and nothing purges refresh tokens), so this job does, in chunks of 100, on its
real tables: ``refresh_token.expiry_date`` (a UTC Instant) and
``password_reset_tokens.expiration_date`` (``used`` is irrelevant: an expired
token is dead either way). "Expired" means before the run's ``runAt``
instant, fixed when the run starts, so a restart deletes exactly what the
first attempt would have.

Reader: keyset pages of ids (``id > last``), so the job's own deletes never
shift a page. Writer: ``DELETE … WHERE id IN (…) AND <expiry> < runAt`` — the
expiry is checked again, so a token renewed between read and write survives,
and re-running a chunk after a crash deletes nothing twice (and counts the chunk's ids
that are gone, so the count stays what was deleted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tranche.batch.job import ChunkStep, ItemWriter, Job
from tranche.batch.listeners import BatchListener
from tranche.batch.readers import KeysetReader
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.doctoral.jobs.common import JobSpec, StepPolicies, add_counts, run_at
from tranche.doctoral.models import utc_naive
from tranche.doctoral.tables.userdb import password_reset_tokens, refresh_token

__all__ = ["DESCRIPTION", "JOB_NAME", "build", "expired_reader", "token_deleter"]

JOB_NAME = "tokenCleanupJob"
DESCRIPTION = "Removes expired refresh tokens and password reset tokens from userdb"


#: Ids read per reader page: several chunks' worth in one SELECT (ids only, so small);
#: the position stays the last id handed out, so a restart still resumes after the last
#: committed chunk.
READ_PAGE = 1000


def expired_reader(
    userdb: Database, table: sa.Table, expiry: sa.Column[Any], chunk_size: int
) -> Callable[[StepContext], KeysetReader[int]]:
    """Reader factory: ids of ``table``'s rows whose ``expiry`` is before the run instant."""

    def make(ctx: StepContext) -> KeysetReader[int]:
        cutoff = utc_naive(run_at(ctx))
        query = sa.select(table.c.id).where(expiry < cutoff)
        return KeysetReader(
            userdb.engine,
            query,
            [table.c.id],
            page_size=max(chunk_size, READ_PAGE),
            map_row=lambda row: int(row["id"]),
        )

    return make


def token_deleter(
    userdb: Database, table: sa.Table, expiry: sa.Column[Any], count_key: str
) -> ItemWriter[int]:
    """Writer: delete the chunk's ids that are still expired; counts what was really deleted."""

    async def write(ids: Sequence[int], ctx: StepContext) -> None:
        cutoff = utc_naive(run_at(ctx))
        session = await ctx.session(userdb.engine)
        result = await session.execute(
            sa.delete(table).where(table.c.id.in_(list(ids)), expiry < cutoff)
        )
        # rowcount is the number of rows deleted on every driver we support.
        deleted = int(getattr(result, "rowcount", 0) or 0)
        if deleted < len(ids):
            # A re-run of a chunk whose userdb commit landed but whose checkpoint did not
            # (a connection killed in between) deletes nothing: those ids are gone, and
            # were this run's. Count what is gone, so the total stays what was deleted;
            # a token renewed since it was read is still there and is not counted.
            kept = await session.execute(sa.select(table.c.id).where(table.c.id.in_(list(ids))))
            deleted = len(ids) - len(kept.all())
        add_counts(ctx, {count_key: deleted})

    return write


def build(
    userdb: Database,
    chunk_size: int,
    cron: str,
    listeners: Sequence[BatchListener] = (),
    policies: StepPolicies | None = None,
) -> JobSpec:
    rules = policies or StepPolicies(skip_limit=10)
    steps = [
        ChunkStep(
            "cleanupRefreshTokensStep",
            reader=expired_reader(userdb, refresh_token, refresh_token.c.expiry_date, chunk_size),
            writer=token_deleter(
                userdb, refresh_token, refresh_token.c.expiry_date, "refreshTokensDeleted"
            ),
            chunk_size=chunk_size,
            retry=rules.retry,
            skip=rules.skip,
        ),
        ChunkStep(
            "cleanupPasswordResetTokensStep",
            reader=expired_reader(
                userdb,
                password_reset_tokens,
                password_reset_tokens.c.expiration_date,
                chunk_size,
            ),
            writer=token_deleter(
                userdb,
                password_reset_tokens,
                password_reset_tokens.c.expiration_date,
                "passwordResetTokensDeleted",
            ),
            chunk_size=chunk_size,
            retry=rules.retry,
            skip=rules.skip,
        ),
    ]

    async def estimate(at: datetime) -> int:
        cutoff = utc_naive(at)
        total = 0
        async with userdb.sessions() as s:
            for table, expiry in (
                (refresh_token, refresh_token.c.expiry_date),
                (password_reset_tokens, password_reset_tokens.c.expiration_date),
            ):
                query = sa.select(sa.func.count()).select_from(table).where(expiry < cutoff)
                total += int((await s.execute(query)).scalar_one())
        return total

    job = Job(JOB_NAME, steps, listeners=listeners, description=DESCRIPTION)
    return JobSpec(job, cron, DESCRIPTION, estimate)
