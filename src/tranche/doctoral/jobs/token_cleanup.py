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
and re-running a chunk after a crash deletes nothing twice. The counts stay
exact across a crash between userdb's and batchdb's commits: a restart counts the
saved next chunk's ids that are gone (:class:`ExpiredTokens`), and a chunk retried in
the same run counts its ids that are gone (:meth:`TokenCleanup.write`).

When userdb is on batchdb's server under the same account (the runbook's one ``batch``
account), the DELETE joins batchdb's transaction (``join_checkpoint``): a chunk's DELETE
and its checkpoint then commit together, once — no window between two commits, and one
log flush per chunk instead of two (``token_cleanup_one_transaction``, on by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from tranche.batch.job import ChunkStep, Job
from tranche.batch.listeners import BatchListener
from tranche.batch.readers import KeysetReader
from tranche.batch.uow import StepContext, is_joined
from tranche.core.db import Database
from tranche.doctoral.jobs.common import JobSpec, StepPolicies, add_counts, run_at
from tranche.doctoral.jobs.duree_reader import ids_in
from tranche.doctoral.models import utc_naive
from tranche.doctoral.tables.userdb import password_reset_tokens, refresh_token

__all__ = ["DESCRIPTION", "JOB_NAME", "NEXT_CHUNK_KEY", "ExpiredTokens", "TokenCleanup", "build"]

JOB_NAME = "tokenCleanupJob"
DESCRIPTION = "Removes expired refresh tokens and password reset tokens from userdb"


#: Ids read per reader page: several chunks' worth in one SELECT (ids only, so small);
#: the position stays the last id handed out, so a restart still resumes after the last
#: committed chunk.
READ_PAGE = 1000
#: Step-context key: the ids the next chunk will delete, saved with each chunk's checkpoint.
NEXT_CHUNK_KEY = "tokens.nextChunk"


class ExpiredTokens:
    """The ids of ``table``'s rows expired before the run instant; recounts after a crash.

    userdb commits a chunk's DELETE before batchdb commits its checkpoint (no two-phase
    commit), so a process that dies between the two has deleted tokens no checkpoint
    counted, and the restart never sees them again (they are gone). Each checkpoint
    therefore also saves the ids the *next* chunk will delete (:data:`NEXT_CHUNK_KEY`,
    from the reader's read-ahead page, in the same statement): reopened after a crash,
    the reader counts those of them that no longer exist — the dead chunk's deletes —
    into the run's counts; those still there are read, deleted and counted as usual.
    Exact unless something else deletes the same expired tokens in that chunk's window.
    """

    def __init__(
        self,
        userdb: Database,
        table: sa.Table,
        expiry: sa.Column[Any],
        count_key: str,
        chunk_size: int,
        ctx: StepContext,
    ) -> None:
        self.userdb, self.table, self.count_key, self.ctx = userdb, table, count_key, ctx
        self.chunk_size = chunk_size
        #: Expired means before this instant (the run's, fixed for a restart too).
        self.cutoff = utc_naive(run_at(ctx))
        query = sa.select(table.c.id).where(expiry < self.cutoff)
        self.keyset = KeysetReader(
            userdb.engine,
            query,
            [table.c.id],
            page_size=max(chunk_size, READ_PAGE),
            # itemgetter, not a lambda: no Python call per id (a page is 1 000 of them).
            map_row=itemgetter("id"),
        )

    async def open(self, position: Any | None) -> None:
        await self.keyset.open(position)
        pending = [int(i) for i in self.ctx.step_context.get(NEXT_CHUNK_KEY, [])]
        if position is None or not pending:
            return
        query = sa.select(self.table.c.id).where(self.table.c.id.in_(pending))
        async with self.userdb.engine.connect() as conn:
            present = set((await conn.execute(query)).scalars())
        add_counts(self.ctx, {self.count_key: len(set(pending) - present)})
        self.ctx.step_context[NEXT_CHUNK_KEY] = []

    async def read(self) -> int | None:
        return await self.keyset.read()

    def take_buffered(self, n: int) -> list[int]:
        return self.keyset.take_buffered(n)

    def position(self) -> Any:
        return self.keyset.position()

    async def close(self) -> None:
        await self.keyset.close()

    async def remember_next_chunk(self) -> None:
        """Put the next chunk's ids in the step context (saved with this chunk)."""
        self.ctx.step_context[NEXT_CHUNK_KEY] = await self.keyset.ahead(self.chunk_size)


class TokenCleanup:
    """Reader factory and writer of one cleanup step (the writer finds its step's reader)."""

    def __init__(
        self,
        userdb: Database,
        table: sa.Table,
        expiry: sa.Column[Any],
        count_key: str,
        chunk_size: int,
        one_transaction: bool = True,
    ) -> None:
        self.userdb, self.table, self.expiry = userdb, table, expiry
        self.count_key, self.chunk_size = count_key, chunk_size
        self.one_transaction = one_transaction
        self._readers: dict[int, ExpiredTokens] = {}
        # Built once, the ids rendered at execution (building a DELETE with 100 bound
        # literals cost about as much Python as running it).
        self._delete = sa.delete(table).where(
            ids_in(table.c.id), expiry < sa.bindparam("cutoff", type_=expiry.type)
        )
        self._kept = sa.select(table.c.id).where(ids_in(table.c.id))

    def reader(self, ctx: StepContext) -> ExpiredTokens:
        reader = ExpiredTokens(
            self.userdb, self.table, self.expiry, self.count_key, self.chunk_size, ctx
        )
        # One entry per running step execution; a later run of the step replaces it.
        self._readers = {ctx.step_execution.id: reader}
        return reader

    async def write(self, ids: Sequence[int], ctx: StepContext) -> None:
        """Delete the chunk's ids that are still expired; count what was really deleted."""
        reader = self._readers.get(ctx.step_execution.id)
        cutoff = reader.cutoff if reader is not None else utc_naive(run_at(ctx))
        # Core statements only: no ORM session to set up, begin and close per chunk.
        session = await ctx.connection(self.userdb.engine, join_checkpoint=self.one_transaction)
        result = await session.execute(self._delete, {"ids": list(ids), "cutoff": cutoff})
        # rowcount is the number of rows deleted on every driver we support.
        deleted = int(getattr(result, "rowcount", 0) or 0)
        if deleted < len(ids):
            # A retry of a chunk whose userdb commit landed but whose checkpoint did not
            # (a connection killed in between) deletes nothing: those ids are gone, and
            # were this run's. Count what is gone, so the total stays what was deleted;
            # a token renewed since it was read is still there and is not counted.
            kept = await session.execute(self._kept, {"ids": list(ids)})
            deleted = len(ids) - len(kept.all())
        add_counts(ctx, {self.count_key: deleted})
        # Joined, the DELETE commits with the checkpoint: no window to recount after.
        if reader is not None and not is_joined(session):
            await reader.remember_next_chunk()


def build(
    userdb: Database,
    chunk_size: int,
    cron: str,
    listeners: Sequence[BatchListener] = (),
    policies: StepPolicies | None = None,
    one_transaction: bool = True,
) -> JobSpec:
    rules = policies or StepPolicies(skip_limit=10)
    steps = [
        ChunkStep(
            name,
            reader=cleanup.reader,
            writer=cleanup.write,
            chunk_size=chunk_size,
            retry=rules.retry,
            skip=rules.skip,
            joined=userdb.engine if one_transaction else None,
        )
        for name, cleanup in (
            (
                "cleanupRefreshTokensStep",
                TokenCleanup(
                    userdb,
                    refresh_token,
                    refresh_token.c.expiry_date,
                    "refreshTokensDeleted",
                    chunk_size,
                    one_transaction,
                ),
            ),
            (
                "cleanupPasswordResetTokensStep",
                TokenCleanup(
                    userdb,
                    password_reset_tokens,
                    password_reset_tokens.c.expiration_date,
                    "passwordResetTokensDeleted",
                    chunk_size,
                    one_transaction,
                ),
            ),
        )
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
