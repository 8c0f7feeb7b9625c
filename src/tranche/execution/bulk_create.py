"""Creating many executions: chunked bulk inserts, each chunk one transaction with its events.

Items arrive already validated (:mod:`tranche.execution.validation`); the invalid
ones are answered without touching the database. The valid ones are inserted in
chunks (size from :class:`~tranche.execution.sizing.ChunkSizer`, concurrency bounded
by :class:`~tranche.execution.sizing.InsertGate`). A chunk is one transaction: the
bulk insert, the ``orders`` outbox rows of the new executions and, for a request
with an Idempotency-Key, the checkpoint of what is done so far — so a chunk's rows,
its events and the record of its results commit together or not at all.

If the bulk statement fails (a row the database refuses: a constraint added by a
DBA, a trigger…), its transaction is rolled back and the chunk is retried row by
row in a new one, so that the bad row fails alone with the database's message and
the others are still created. The bulk statement runs without a savepoint (it is
the transaction's first statement, so a rollback loses nothing; a savepoint would
cost every chunk two round trips); on PostgreSQL each retried row runs in a
savepoint, while SQLite backs out a failed statement by itself and keeps the
transaction (and its driver would commit at the first savepoint's release).
Errors that are not about a row (connection lost, database down) are raised:
already committed chunks stay committed and recorded in the checkpoint, and the
caller answers 503. (What items become is in :mod:`~tranche.execution.results`, which
rows count as refused in :mod:`~tranche.execution.row_errors`; both re-exported here.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxBacklog, enqueue_many, wake
from tranche.execution import repository
from tranche.execution.bulk_insert import RESERVING_METHODS, NewRow, insert_one, insert_rows
from tranche.execution.clients.security import SecurityClient
from tranche.execution.events import order_events, order_headers
from tranche.execution.metrics import ExecutionMetrics
from tranche.execution.results import ChunkOutcome, ItemResult, new_dto
from tranche.execution.row_errors import db_error_message, is_row_error
from tranche.execution.schemas import execution_dto
from tranche.execution.sizing import ChunkSizer, InsertGate, PoolLoad
from tranche.execution.validation import Invalid, NewExecution

__all__ = [
    "BatchWriter",
    "Checkpoint",
    "ChunkOutcome",
    "ItemResult",
    "db_error_message",
    "is_row_error",
    "new_dto",
]

log = get_logger(__name__)

Checkpoint = Callable[[AsyncSession, dict[str, Any]], Awaitable[None]]

#: Rows per statement SQLite can take (12 parameters a row, 32 766 parameters a statement).
SQLITE_MAX_ROWS = 2000


@dataclass(frozen=True)
class _Request:
    """What every chunk of one :meth:`BatchWriter.create` call shares.

    ``results`` (by request index) and ``done`` (the cumulative checkpoint state:
    ``created`` / ``failed`` by request index) are filled in as chunks finish.
    """

    received: datetime
    tickers: Mapping[str, str | None]
    results: list[ItemResult]
    done: dict[str, dict[str, Any]]
    checkpoint: Checkpoint | None
    #: The chunks' hand-offs, released when the last chunk is done (``hold_handoff``).
    held: wake.Held | None


class _Turn:
    """A chunk's turn to reserve its ids: after the chunk before it has reserved."""

    def __init__(self, before: asyncio.Event | None) -> None:
        self.before = before
        self.taken = asyncio.Event()

    async def __aenter__(self) -> None:
        if self.before is not None:
            await self.before.wait()

    async def __aexit__(self, *_exc: object) -> None:
        self.taken.set()


class _Refused(Exception):
    """The bulk statement was refused because of a row (carries the database's error)."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


class BatchWriter:
    def __init__(
        self,
        db: Database,
        *,
        security: SecurityClient,
        sizer: ChunkSizer,
        gate: InsertGate,
        method: str,
        metrics: ExecutionMetrics,
        topic: str,
        type_id: str,
        parallel_chunks: int = 1,
        backlog: OutboxBacklog | None = None,
        clock: Clock = utc_now,
        hold_handoff: bool = False,
    ) -> None:
        self.db = db
        self.hold_handoff = hold_handoff
        self.backlog = backlog
        self.parallel_chunks = parallel_chunks
        self.security = security
        self.sizer = sizer
        self.gate = gate
        self.method = method
        self.metrics = metrics
        self.topic = topic
        self.type_id = type_id
        self.headers = order_headers(type_id)
        self.clock = clock
        self.savepoints = db.dialect != "sqlite"
        self.max_chunk = SQLITE_MAX_ROWS if db.dialect == "sqlite" else None
        metrics.chunk_size.set(sizer.size())

    def pool_load(self) -> PoolLoad:
        pool: Any = self.db.engine.sync_engine.pool
        try:
            capacity = int(pool.size()) + max(int(getattr(pool, "_max_overflow", 0)), 0)
            in_use = int(pool.checkedout())
        except (AttributeError, TypeError):
            return PoolLoad(0, 0, self.gate.waiting)
        return PoolLoad(in_use, capacity, self.gate.waiting)

    async def create(
        self,
        items: Sequence[NewExecution | Invalid],
        *,
        resume: dict[str, Any] | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> list[ItemResult]:
        """Results in request order (``index`` 0..n-1).

        With ``hold_handoff`` (the answer does not wait for the broker) the chunks'
        events go to the producer once every chunk is done, not as each commits: the
        hand-off's work (its claim, building and sending the records) would otherwise
        take the core the request's remaining chunks and its answer need, and on a
        2-core machine the answer came ~15 ms later for 1 000 items. The rows are
        committed PENDING either way; only their commit-to-broker time grows, by the
        rest of the request."""
        held = wake.Held() if self.hold_handoff else None
        try:
            return await self._create(items, resume, checkpoint, held)
        finally:
            if held is not None:
                held.release()

    async def _create(
        self,
        items: Sequence[NewExecution | Invalid],
        resume: dict[str, Any] | None,
        checkpoint: Checkpoint | None,
        held: wake.Held | None,
    ) -> list[ItemResult]:
        results = [ItemResult(i) for i in range(len(items))]
        done: dict[str, dict[str, Any]] = {"created": {}, "failed": {}}
        if resume:
            done = {"created": dict(resume["created"]), "failed": dict(resume["failed"])}
        todo: list[tuple[int, NewExecution]] = []
        resumed = bool(done["failed"] or done["created"])
        for i, item in enumerate(items):
            if isinstance(item, Invalid):
                results[i].message = item.message
            elif not resumed:
                todo.append((i, item))
            elif str(i) in done["failed"]:
                results[i].message = str(done["failed"][str(i)])
            elif str(i) not in done["created"]:
                todo.append((i, item))
        security_ids = {it.security_id for it in items if isinstance(it, NewExecution)}
        tickers = await self.security.tickers_for(security_ids) if security_ids else {}
        if done["created"]:
            await self._load_created(results, done["created"], tickers)
        request = _Request(self.clock(), tickers, results, done, checkpoint, held)
        chunks = self._chunks(todo)
        # A checkpoint is cumulative (each chunk records everything done so far), so an
        # idempotent request writes its chunks one after another; so do methods that
        # take their ids from the INSERT (ids would not follow the request order).
        workers = self.parallel_chunks if checkpoint is None else 1
        if self._method not in RESERVING_METHODS or len(todo) <= self.sizer.size():
            workers = 1

        async def worker() -> None:
            for chunk, turn in chunks:
                await self._chunk(request, chunk, turn)

        if workers == 1:
            await worker()
            return results
        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return results

    def _chunks(
        self, todo: list[tuple[int, NewExecution]]
    ) -> Iterator[tuple[list[tuple[int, NewExecution]], _Turn]]:
        """Consecutive chunks (sized when taken, so dynamic sizing applies), each with its
        turn to reserve ids after the chunk before it."""
        pos = 0
        before: asyncio.Event | None = None
        while pos < len(todo):
            size = self.sizer.size()
            if self.max_chunk is not None:
                size = min(size, self.max_chunk)
            chunk = todo[pos : pos + size]
            pos += len(chunk)
            turn = _Turn(before)
            before = turn.taken
            yield chunk, turn

    async def _load_created(
        self,
        results: list[ItemResult],
        created: dict[str, Any],
        tickers: dict[str, str | None],
    ) -> None:
        """Results of items a previous attempt committed (a resumed idempotent request)."""
        async with self.db.sessions() as s:
            rows = await repository.get_many(s, (int(v) for v in created.values()))
        for index, execution_id in created.items():
            row = rows.get(int(execution_id))
            if row is not None:
                results[int(index)].dto = execution_dto(row, tickers.get(row["security_id"]))
            else:
                results[int(index)].message = "Execution was created but can no longer be read"

    async def _chunk(
        self, request: _Request, chunk: list[tuple[int, NewExecution]], turn: _Turn
    ) -> None:
        try:
            await self._write(request, chunk, turn)
        finally:
            turn.taken.set()  # a chunk that never reserved (fallback, error) frees the next

    async def _write(
        self, request: _Request, chunk: list[tuple[int, NewExecution]], turn: _Turn
    ) -> None:
        received = request.received
        # Positional, in NewRow's order: the item's fields with the request's timestamp.
        rows = [
            NewRow(status, trade_type, destination, security_id, quantity, limit, received, tsid)
            for _, (status, trade_type, destination, security_id, quantity, limit, tsid) in chunk
        ]
        indexes = [index for index, _ in chunk]
        async with self.gate:
            self.metrics.inserts_waiting.set(self.gate.waiting)
            if self.backlog is not None:
                # Inside the gate: the rows that can still join the backlog once it is
                # over the limit are those of the chunks already past it (gate x chunk).
                await self.backlog.wait()
            start = time.perf_counter()
            try:
                # The happy path: the bulk statement first in its transaction, no savepoint
                # (two round trips a chunk saved); a refused row rolls it all back.
                async with self.db.transaction() as session:
                    if request.held is not None:
                        wake.hold(session, request.held)
                    try:
                        ids: list[int | str] = list(
                            await insert_rows(session, rows, self._method, turn)
                        )
                    except DBAPIError as exc:
                        if not is_row_error(exc):
                            raise
                        raise _Refused(exc) from exc
                    outcome = await self._record(session, request, indexes, rows, ids)
            except _Refused as refused:
                outcome = await self._fallback(request, refused.error, indexes, rows)
            elapsed = time.perf_counter() - start
        if self.backlog is not None:
            self.backlog.added(len(outcome.event_ids))
        request.done.update(outcome.state)
        for (index, dto), event_id, rendered in zip(
            outcome.created, outcome.event_ids, outcome.rendered, strict=True
        ):
            result = request.results[index]
            result.dto, result.event_id, result.rendered = dto, event_id, rendered
        for index_text, message in outcome.failed.items():
            request.results[int(index_text)].message = message
        self.metrics.chunk_duration.labels(self.method).observe(elapsed)
        self.metrics.chunk_rows.observe(len(rows))
        self.metrics.chunk_size.set(self.sizer.observe(len(rows), elapsed, self.pool_load()))

    async def _record(
        self,
        session: AsyncSession,
        request: _Request,
        indexes: list[int],
        rows: list[NewRow],
        outcomes: list[int | str],
    ) -> ChunkOutcome:
        """The chunk's events and checkpoint, in the transaction of its rows."""
        created: list[tuple[int, dict[str, Any]]] = []
        failed: dict[str, str] = {}
        for index, row, outcome in zip(indexes, rows, outcomes, strict=True):
            if isinstance(outcome, str):
                failed[str(index)] = outcome
            else:
                ticker = request.tickers.get(row.security_id)
                created.append((index, new_dto(row, outcome, ticker)))
        events, rendered = order_events(self.topic, self.headers, [dto for _, dto in created])
        event_ids = await enqueue_many(session, events)
        # The cumulative state is what a checkpoint records; without one nothing reads it.
        state: dict[str, Any] = {}
        if request.checkpoint is not None:
            state = {
                "created": request.done["created"] | {str(i): dto["id"] for i, dto in created},
                "failed": request.done["failed"] | failed,
            }
            await request.checkpoint(session, state)
        return ChunkOutcome(created, failed, event_ids, state, rendered)

    async def _fallback(
        self, request: _Request, error: DBAPIError, indexes: list[int], rows: list[NewRow]
    ) -> ChunkOutcome:
        """The bulk statement was refused: the rows one by one in a new transaction, so
        that only the bad ones fail (each in a savepoint on PostgreSQL)."""
        if len(rows) > 1:
            self.metrics.fallbacks.inc()
            log.warning("bulk_insert_fallback", rows=len(rows), error=db_error_message(error))
        async with self.db.transaction() as session:
            if request.held is not None:
                wake.hold(session, request.held)
            outcomes: list[int | str] = []
            if len(rows) == 1:
                outcomes.append(db_error_message(error))
            for row in rows if len(rows) > 1 else ():
                try:
                    if self.savepoints:
                        async with session.begin_nested():
                            outcomes.append(await insert_one(session, row))
                    else:
                        outcomes.append(await insert_one(session, row))
                except DBAPIError as exc:
                    if not is_row_error(exc):
                        raise
                    outcomes.append(db_error_message(exc))
            return await self._record(session, request, indexes, rows, outcomes)

    @property
    def _method(self) -> str:
        if self.savepoints:
            return self.method
        return self.method if self.method in ("values", "row") else "values"
