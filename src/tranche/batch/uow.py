"""The unit of work of a chunk (or tasklet call), and the context handed to user code.

A unit of work is one transaction on batchdb, which the engine uses for the step's
checkpoint, plus one transaction per other database the writer asks for with
``ctx.session(engine)``. On success the other databases commit first and batchdb (the
checkpoint) last; on any error everything rolls back. When the writer only writes to
batchdb, its writes and the checkpoint are one transaction: exactly once across crashes and
restarts. Writes to another database cannot join that transaction (no two-phase commit),
so a crash between the two commits re-writes that chunk on restart: make such writers
idempotent (deletes, upserts, "insert unless present"), as with Spring Batch without XA.

Unless that database is on batchdb's server under batchdb's account (MariaDB): a writer
may then ask for its session *inside* batchdb's transaction (``ctx.session(engine,
join_checkpoint=True)``, or ``ctx.connection(…)`` for Core statements without an ORM
session), its statements schema-qualified with that database's name. The
chunk's writes and its checkpoint are then one transaction with one commit (one log flush
instead of two, one round trip fewer) and exactly once across a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    AsyncSessionTransaction,
    AsyncTransaction,
)
from sqlalchemy.orm import Session

from tranche.batch.connections import HeldConnections
from tranche.batch.context import ExecutionContext
from tranche.batch.errors import BatchError
from tranche.batch.joining import (
    SCHEMA_INFO,
    JoinedSession,
    QualifiedConnection,
    is_joined,
    shared_schema,
)
from tranche.batch.model import JobExecution, JobParameters, StepExecution

__all__ = ["StepContext", "UnitOfWork", "is_joined", "shared_schema"]


@dataclass
class _Savepoint:
    nested: list[AsyncSessionTransaction | AsyncTransaction]
    sessions_before: set[int]
    joined_before: set[int]
    #: Whether batchdb's transaction, and the writer's session on it, were already open.
    batch_before: bool
    batch_session_before: bool


class UnitOfWork:
    """Transactions on batchdb and on every database the writer touches, committed together.

    The batchdb transaction starts lazily, with ``on_begin`` (on SQLite the job-lock fence,
    a write) as its first statement: SQLite then takes its write lock before reading
    anything, and holds it only from the first batchdb use to the commit. With
    ``connections`` the transactions run on connections the step keeps checked out
    (:class:`~tranche.batch.connections.HeldConnections`), not on one checkout per unit.

    batchdb's transaction is a Core transaction on its connection (the checkpoint needs no
    session); the writer's batchdb session (``ctx.session()``) and the joined sessions join
    it (``rollback_only``: their commit flushes, batchdb commits once, here). An
    ``AsyncSession`` set up, committed and closed per chunk cost about as much Python as
    the chunk's checkpoint statement.

    :meth:`begin_batch_now` starts the batchdb transaction (and ``on_begin``) at once, beside
    whatever the writer does on the other databases: the fence's wait overlaps the writer's.
    Every use of batchdb, and every commit, waits for it first, so nothing commits unless
    ``on_begin`` succeeded.
    """

    def __init__(
        self,
        batch_engine: AsyncEngine,
        on_begin: Callable[[AsyncConnection], Awaitable[None]] | None = None,
        connections: HeldConnections | None = None,
    ) -> None:
        self._batch_engine = batch_engine
        self._on_begin = on_begin
        self._connections = connections
        #: Other databases' sessions, each in its own transaction, by engine.
        self._sessions: dict[int, AsyncSession] = {}
        #: Sessions inside batchdb's transaction (:meth:`joined_session`), by engine.
        self._joined: dict[int, AsyncSession] = {}
        #: batchdb's connection and transaction, and the writer's session on them.
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._batch: AsyncSession | None = None
        self._opening: asyncio.Task[AsyncConnection] | None = None
        self._before_batch_commit: Callable[[], Awaitable[None]] | None = None

    @property
    def batch_engine(self) -> AsyncEngine:
        return self._batch_engine

    @property
    def fences_on_begin(self) -> bool:
        """Whether ``on_begin`` (the job-lock fence) runs in this unit's batchdb transaction."""
        return self._on_begin is not None

    def begin_batch_now(self) -> None:
        """Begin the batchdb transaction (running ``on_begin``) now, in the background."""
        if self._opening is None and self._conn is None:
            self._opening = asyncio.ensure_future(self._begin_batch())

    async def _opened(self) -> None:
        """Wait for :meth:`begin_batch_now`'s work; raises what it raised (a lost lock)."""
        if self._opening is not None:
            await self._opening

    async def _settle(self) -> None:
        """Wait for :meth:`begin_batch_now`'s work, whatever its outcome (before a rollback)."""
        if self._opening is not None:
            with contextlib.suppress(Exception):
                await self._opening

    async def batch_connection(self) -> AsyncConnection:
        """The batchdb transaction's connection, for the engine's checkpoint statements."""
        await self._opened()
        return self._conn if self._conn is not None else await self._begin_batch()

    async def _begin_batch(self) -> AsyncConnection:
        if self._conn is None:
            engine = self._batch_engine
            held = self._connections
            self._conn = conn = await engine.connect() if held is None else await held.get(engine)
            # A held connection is in no transaction between units: this one is the unit's.
            self._tx = await conn.begin()
            if self._on_begin is not None:
                await self._on_begin(conn)
        return self._conn

    async def session(self, engine: AsyncEngine | None = None) -> AsyncSession:
        target = engine or self._batch_engine
        if target.sync_engine is not self._batch_engine.sync_engine:
            return await self._open(target)
        if self._batch is None:
            self._batch = self._joining(await self.batch_connection(), Session)
        return self._batch

    async def joined_session(self, engine: AsyncEngine) -> AsyncSession:
        """``engine``'s session inside batchdb's transaction, if it can join (else its own).

        Joined (see :func:`shared_schema`), the writer's statements run on batchdb's
        connection, after the fence, and commit with the checkpoint: nothing of them
        commits without it, and a failure rolls both back. The writer must not use batchdb
        at the same time (one connection runs one statement at a time), and must name its
        tables through ``Table`` objects: a ``text()`` statement is not qualified, so it
        would run against batchdb's database.
        """
        joins, schema = shared_schema(self._batch_engine, engine)
        key = id(engine.sync_engine)
        if not joins or key in self._sessions:
            return await self.session(engine)
        joined = self._joined.get(key)
        if joined is None:
            conn = await self.batch_connection()
            joined = self._joining(conn, JoinedSession, schema)
            self._joined[key] = joined
        return joined

    async def connection(
        self, engine: AsyncEngine, *, join: bool
    ) -> AsyncConnection | QualifiedConnection:
        """``engine``'s connection in this unit, for Core statements (no ORM session).

        ``join``: batchdb's, qualified for ``engine``'s database, when it can join (as
        :meth:`joined_session`); otherwise the connection of ``engine``'s transaction.
        """
        key = id(engine.sync_engine)
        if join and key not in self._sessions:
            joins, schema = shared_schema(self._batch_engine, engine)
            if joins:
                return QualifiedConnection(await self.batch_connection(), schema)
        if engine.sync_engine is self._batch_engine.sync_engine:
            return await self.batch_connection()
        return await (await self._open(engine)).connection()

    @staticmethod
    def _joining(
        conn: AsyncConnection, kind: type[Session], schema: str | None = None
    ) -> AsyncSession:
        # rollback_only: the session's commit flushes and leaves batchdb's transaction
        # alone (it commits last, with the checkpoint); close() does not touch it either.
        return AsyncSession(
            conn,
            sync_session_class=kind,
            join_transaction_mode="rollback_only",
            expire_on_commit=False,
            info={SCHEMA_INFO: schema},
        )

    async def _open(self, target: AsyncEngine) -> AsyncSession:
        key = id(target.sync_engine)
        if key not in self._sessions:
            # Bound to a held connection that is in no transaction, the session begins one
            # and commits or rolls back that one only; the connection stays checked out.
            bind = target if self._connections is None else await self._connections.get(target)
            session = AsyncSession(bind, expire_on_commit=False)
            self._sessions[key] = session
            await session.connection()
        return self._sessions[key]

    async def savepoint(self) -> _Savepoint:
        await self._opened()
        nested: list[AsyncSessionTransaction | AsyncTransaction] = [
            await s.begin_nested() for s in self._sessions.values()
        ]
        # Joined sessions share batchdb's connection: its savepoint covers their work; the
        # writer's batchdb session takes it itself, so its ORM state follows a rollback.
        if self._batch is not None:
            nested.append(await self._batch.begin_nested())
        elif self._conn is not None:
            nested.append(await self._conn.begin_nested())
        return _Savepoint(
            nested,
            set(self._sessions),
            set(self._joined),
            self._conn is not None,
            self._batch is not None,
        )

    async def rollback_to(self, savepoint: _Savepoint) -> None:
        for tx in savepoint.nested:
            await tx.rollback()
        for key in set(self._joined) - savepoint.joined_before:
            # Its work was batchdb's transaction's, undone above (or below with it).
            await self._joined.pop(key).close()
        # A database first touched after the savepoint holds only the failed item's work.
        for key in set(self._sessions) - savepoint.sessions_before:
            session = self._sessions.pop(key)
            await session.rollback()
            await session.close()
        if not savepoint.batch_before and self._conn is not None:
            await self._end_batch(commit=False)
        elif not savepoint.batch_session_before and self._batch is not None:
            # Opened on the savepoint's connection after it: its work was undone above.
            batch, self._batch = self._batch, None
            await batch.close()

    async def release(self, savepoint: _Savepoint) -> None:
        for tx in savepoint.nested:
            await tx.commit()

    def before_batch_commit(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` (the checkpoint) in batchdb's transaction within :meth:`commit`."""
        self._before_batch_commit = work

    async def commit(self) -> None:
        """Other databases first, batchdb (holding the checkpoint) last.

        :meth:`before_batch_commit`'s work (the checkpoint, in batchdb's transaction) runs
        beside the other databases' commits: batchdb commits only once both are done, so a
        failure of either leaves batchdb uncommitted, as if the process had died between
        the other databases' commits and batchdb's. Nothing commits before
        :meth:`begin_batch_now`'s ``on_begin`` (the fence) succeeded.
        """
        try:
            await self._opened()
            others: list[Awaitable[None]] = [s.commit() for s in self._sessions.values()]
            before, self._before_batch_commit = self._before_batch_commit, None
            if before is not None:
                others.append(before())
            if len(others) == 1:
                await others[0]
            elif others:
                # Both finish before anything else runs on their connections (no rollback
                # while a statement is in flight); the first failure is raised.
                results = await asyncio.gather(*others, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result
            if self._batch is not None:
                await self._batch.commit()  # flushes into batchdb's transaction
            if self._conn is not None:
                await self._end_batch(commit=True)
        finally:
            await self.close()

    async def rollback(self) -> None:
        await self._settle()
        try:
            for session in self._sessions.values():
                await session.rollback()
        finally:
            await self.close()

    async def _end_batch(self, *, commit: bool) -> None:
        """Commit or roll back batchdb's transaction; its sessions are closed first."""
        joined, self._joined = list(self._joined.values()), {}
        batch, self._batch = self._batch, None
        for session in [*joined, *([batch] if batch is not None else [])]:
            await session.close()
        conn, tx, self._conn, self._tx = self._conn, self._tx, None, None
        try:
            if tx is not None and tx.is_active:
                await (tx.commit() if commit else tx.rollback())
        finally:
            if self._connections is None and conn is not None:
                await conn.close()

    async def close(self) -> None:
        await self._settle()
        self._opening = None
        sessions, self._sessions = list(self._sessions.values()), {}
        try:
            await self._end_batch(commit=False)
        finally:
            for session in sessions:
                await session.close()


@dataclass
class StepContext:
    """What readers' factories, writers and tasklets see of the running step."""

    job_execution: JobExecution
    step_execution: StepExecution
    _stop_requested: Callable[[], bool] = field(repr=False)
    _uow: UnitOfWork | None = field(default=None, repr=False)

    @property
    def parameters(self) -> JobParameters:
        return self.job_execution.parameters

    @property
    def job_context(self) -> ExecutionContext:
        """Shared by all steps of the execution (e.g. statistics for a later report step)."""
        return self.job_execution.context

    @property
    def step_context(self) -> ExecutionContext:
        return self.step_execution.context

    @property
    def stop_requested(self) -> bool:
        """A long tasklet may poll this and return early; the step then ends STOPPED."""
        return self._stop_requested()

    async def session(
        self, engine: AsyncEngine | None = None, *, join_checkpoint: bool = False
    ) -> AsyncSession:
        """The transaction of this chunk on ``engine`` (default: batchdb); committed for you.

        ``join_checkpoint``: inside batchdb's transaction when ``engine``'s database can
        join it (:meth:`UnitOfWork.joined_session`; one commit for the writes and the
        checkpoint); its own transaction otherwise. Not for writers that use batchdb too.
        """
        if self._uow is None:
            raise BatchError("ctx.session() is available inside a writer or a tasklet only")
        if join_checkpoint and engine is not None:
            return await self._uow.joined_session(engine)
        return await self._uow.session(engine)

    async def connection(
        self, engine: AsyncEngine | None = None, *, join_checkpoint: bool = False
    ) -> AsyncConnection | QualifiedConnection:
        """As :meth:`session`, for a writer of Core statements only: no ORM session."""
        if self._uow is None:
            raise BatchError("ctx.connection() is available inside a writer or a tasklet only")
        return await self._uow.connection(engine or self._uow.batch_engine, join=join_checkpoint)

    def count(self, *, read: int = 0, write: int = 0, filter: int = 0) -> None:
        """Add to the step's counters (for tasklets; chunk steps count by themselves)."""
        self.step_execution.read_count += read
        self.step_execution.write_count += write
        self.step_execution.filter_count += filter

    def bind(self, uow: UnitOfWork | None) -> None:
        self._uow = uow

    def extras(self) -> dict[str, Any]:
        return {"job": self.job_execution.job_name, "step": self.step_execution.step_name}
