"""Durable delivery: rows that must reach a peer, claimed, attempted, backed off, buried.

A delivery table (the outbox, the execution service's fill callbacks) holds one
row per thing to deliver: a status (pending, then done or dead), an attempt
count, when the next attempt is due, the last error and when the row was made.
A table whose attempts outlive a transaction (an HTTP call) also has a lease
column: a claimed row is the claimer's until the lease runs out, so replicas
never attempt the same row at once and a replica that dies mid-attempt gives
its rows back by itself. (The outbox relay holds its rows with the claiming
transaction instead, so the outbox has no lease column.)

:class:`DeliveryQueue` names those columns once and does everything that
depends only on them: which rows are due and claiming them (``FOR UPDATE SKIP
LOCKED`` where the database has it), recording each row's fate, giving leases
back, and the pending/oldest/dead figures behind the gauges. :func:`next_due`
is the one decision after a failed attempt — when the next one is due, or
none (the row is dead) — from the :class:`~tranche.core.resilience.Backoff`
policy. What an attempt *is* (publish to Kafka, PUT to a peer) stays with the
caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.resilience import Backoff

__all__ = ["DeliveryQueue", "QueueStats", "next_due"]


def next_due(
    backoff: Backoff, attempts: int, now: datetime, *, permanent: bool = False
) -> datetime | None:
    """When the next attempt is due after failed attempt number ``attempts``; None when the
    row is dead (``permanent``: the failure will not get better by retrying)."""
    if permanent or backoff.exhausted(attempts):
        return None
    return now + timedelta(seconds=backoff.delay_after(attempts))


@dataclass(frozen=True)
class QueueStats:
    pending: int = 0
    oldest_pending_s: float = 0.0
    dead: int = 0


def _aware(value: Any) -> datetime:
    """An aggregate's datetime as aware UTC (SQLite hands ``min()`` back as text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class DeliveryQueue:
    """The delivery columns of ``table`` (by name) and the statuses they take."""

    def __init__(
        self,
        table: sa.Table,
        *,
        done: str,
        dead: str,
        pending: str = "PENDING",
        id: str = "id",
        due_at: str = "next_attempt_at",
        lease: str | None = None,
        max_error: int = 1000,
    ) -> None:
        c = table.c
        self.table = table
        self.pending, self.done, self.dead = pending, done, dead
        self.id = c[id]
        self.status = c.status
        self.attempts = c.attempts
        self.due_at = c[due_at]
        self.created_at = c.created_at
        self.last_error = c.last_error
        self.lease = c[lease] if lease is not None else None
        self.max_error = max_error

    # -- claiming ------------------------------------------------------------------
    def due(self, now: datetime) -> sa.ColumnElement[bool]:
        """Pending, due by ``now``, and (with a lease column) not leased to anyone."""
        clause = (self.status == self.pending) & (self.due_at <= now)
        if self.lease is not None:
            clause = clause & (self.lease.is_(None) | (self.lease <= now))
        return clause

    def claim_select(
        self,
        now: datetime,
        limit: int,
        columns: Sequence[Any] | None = None,
        *,
        where: sa.ColumnElement[bool] | None = None,
        lock: bool = True,
    ) -> sa.Select[Any]:
        """The first ``limit`` due rows in id order (``SKIP LOCKED`` when ``lock``)."""
        stmt = sa.select(*(columns or [self.table])).where(self.due(now))
        if where is not None:
            stmt = stmt.where(where)
        stmt = stmt.order_by(self.id).limit(limit)
        if lock:
            # Extra conditions may name other tables: lock only ours (PostgreSQL's ``OF``;
            # SQLAlchemy leaves it out for MariaDB, which locks only the FROM rows anyway).
            stmt = stmt.with_for_update(skip_locked=True, of=self.table)
        return stmt

    async def claim_leased(
        self,
        session: AsyncSession,
        now: datetime,
        limit: int,
        lease_s: float,
        *,
        where: sa.ColumnElement[bool] | None = None,
    ) -> list[RowMapping]:
        """Claim due rows and lease them until ``now + lease_s``; commit to make it stick."""
        assert self.lease is not None, "a leased claim needs a lease column"
        rows = list((await session.execute(self.claim_select(now, limit, where=where))).mappings())
        if rows:
            await session.execute(
                self.table.update()
                .where(self.id.in_([r[self.id.name] for r in rows]))
                .values({self.lease.name: self.lease_until(now, lease_s)})
            )
        return rows

    def lease_until(self, now: datetime, lease_s: float) -> datetime:
        """The lease value :meth:`claim_leased` writes for a claim at ``now``."""
        return now + timedelta(seconds=lease_s)

    async def release(
        self, session: AsyncSession, ids: Iterable[Any], *, leased_until: datetime | None = None
    ) -> None:
        """End the leases on ``ids`` now (their rows are due again at once).

        With ``leased_until``, only the rows still carrying that lease: the claimer's own,
        not a lease another replica took after ours ran out, and nothing at all when the
        claim never committed.
        """
        assert self.lease is not None
        wanted = list(ids)
        if wanted:
            stmt = self.table.update().where(self.id.in_(wanted))
            if leased_until is not None:
                stmt = stmt.where(self.lease == leased_until)
            await session.execute(stmt.values({self.lease.name: None}))

    # -- recording -----------------------------------------------------------------
    def clip(self, error: str | None) -> str | None:
        return None if error is None else error[: self.max_error]

    async def record(
        self,
        session: AsyncSession,
        row_id: Any,
        values: Mapping[str, Any],
        *,
        only_pending: bool = False,
    ) -> int:
        """Write one row's outcome (column name -> value; ``last_error`` is clipped).

        ``only_pending``: leave a row alone that left PENDING meanwhile (e.g. superseded).
        Returns the rows changed.
        """
        changes = dict(values)
        if self.last_error.name in changes:
            changes[self.last_error.name] = self.clip(changes[self.last_error.name])
        stmt = self.table.update().where(self.id == row_id)
        if only_pending:
            stmt = stmt.where(self.status == self.pending)
        result = await session.execute(stmt.values(changes))
        return cast(CursorResult[Any], result).rowcount

    async def record_many(
        self, session: AsyncSession, status: str, changes: Iterable[Mapping[str, Any]]
    ) -> None:
        """Give many rows ``status`` and their own values, in one executemany.

        Each change holds ``id`` and the same column names; ``last_error`` is clipped.
        """
        error = self.last_error.name
        params = [
            {f"v_{k}": self.clip(v) if k == error else v for k, v in c.items()} for c in changes
        ]
        if not params:
            return
        columns = [k[2:] for k in params[0] if k != "v_id"]
        await session.execute(
            self.table.update()
            .where(self.id == sa.bindparam("v_id"))
            .values({self.status.name: status, **{k: sa.bindparam(f"v_{k}") for k in columns}}),
            params,
        )

    # -- gauges --------------------------------------------------------------------
    async def stats(
        self,
        session: AsyncSession,
        now: datetime,
        by: sa.ColumnElement[Any] | None = None,
    ) -> dict[Any, QueueStats]:
        """Pending count, age of the oldest pending row and dead count, per value of ``by``
        (one entry keyed None without it). Groups with neither pending nor dead rows are
        left out."""
        group = [by] if by is not None else []
        key = (lambda row: row[0]) if by is not None else (lambda _row: None)
        pending = await session.execute(
            sa.select(*group, sa.func.count(), sa.func.min(self.created_at))
            .where(self.status == self.pending)
            .group_by(*group)
        )
        out: dict[Any, QueueStats] = {}
        for row in pending.all():
            count, oldest = row[-2], row[-1]
            if not count:
                continue
            age = max(0.0, (now - _aware(oldest)).total_seconds())
            out[key(row)] = QueueStats(int(count), age)
        dead = await session.execute(
            sa.select(*group, sa.func.count()).where(self.status == self.dead).group_by(*group)
        )
        for row in dead.all():
            if row[-1]:
                found = out.get(key(row), QueueStats())
                out[key(row)] = QueueStats(found.pending, found.oldest_pending_s, int(row[-1]))
        return out
