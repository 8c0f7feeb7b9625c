"""Queries over the trade database; every function takes the caller's session.

:class:`TradeStore` hands out sessions. On SQLite (one writer at a time) it
serialises this process's write transactions, because two deferred SQLite
transactions that both read and then write fail with "database is locked"
instead of waiting; PostgreSQL gets row locks (``FOR UPDATE``) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.db import Database
from tranche.trade.models import (
    Blotter,
    Destination,
    Execution,
    ExecutionStatus,
    StatusId,
    TradeOrder,
    TradeType,
)

__all__ = [
    "TradeStore",
    "claim_executions",
    "delete_executions",
    "existing_ids",
    "get_execution",
    "get_executions",
    "get_lookup",
    "get_trade_order",
    "has_executions",
    "keep_for_resend",
    "list_executions",
    "list_lookup",
    "list_trade_orders",
    "lock_trade_orders",
    "mark_sent",
    "order_id_exists",
    "service_ids_held",
    "status_by_abbreviation",
    "unclaim_executions",
    "unrecorded_with_keys",
]

L = TypeVar("L", Blotter, TradeType, ExecutionStatus, Destination)


class TradeStore:
    """The trade database and how to open read and write units of work on it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if db.dialect == "sqlite" else None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.db.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on exit and rolls back on error."""
        if self._write_lock is None:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._write_lock, self.db.transaction() as session:
            yield session


async def list_lookup(session: AsyncSession, model: type[L]) -> Sequence[L]:
    return (await session.scalars(sa.select(model).order_by(model.id))).all()


async def get_lookup(session: AsyncSession, model: type[L], id_: int) -> L | None:
    return await session.get(model, id_)


async def status_by_abbreviation(session: AsyncSession) -> dict[str, ExecutionStatus]:
    return {s.abbreviation: s for s in await list_lookup(session, ExecutionStatus)}


async def existing_ids(session: AsyncSession, model: type[Any], ids: Iterable[int]) -> set[int]:
    wanted = set(ids)
    if not wanted:
        return set()
    rows = await session.scalars(sa.select(model.id).where(model.id.in_(wanted)))
    return set(rows)


async def get_trade_order(session: AsyncSession, id_: int) -> TradeOrder | None:
    return await session.get(TradeOrder, id_, populate_existing=True)


async def lock_trade_orders(session: AsyncSession, ids: Iterable[int]) -> dict[int, TradeOrder]:
    """Load and row-lock the orders, in id order so concurrent lockers cannot deadlock."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    stmt = (
        sa.select(TradeOrder)
        .where(TradeOrder.id.in_(wanted))
        .order_by(TradeOrder.id)
        .with_for_update(of=TradeOrder)
        .execution_options(populate_existing=True)
    )
    return {o.id: o for o in await session.scalars(stmt)}


async def has_executions(session: AsyncSession, trade_order_id: int) -> bool:
    stmt = sa.select(Execution.id).where(Execution.trade_order_id == trade_order_id).limit(1)
    return (await session.scalar(stmt)) is not None


async def order_id_exists(session: AsyncSession, order_id: int) -> bool:
    found = await session.scalar(sa.select(TradeOrder.id).where(TradeOrder.order_id == order_id))
    return found is not None


async def list_trade_orders(
    session: AsyncSession, limit: int | None, offset: int, order_id: int | None
) -> tuple[Sequence[TradeOrder], int]:
    where = [TradeOrder.order_id == order_id] if order_id is not None else []
    total = await session.scalar(sa.select(sa.func.count(TradeOrder.id)).where(*where))
    stmt = sa.select(TradeOrder).where(*where).order_by(TradeOrder.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).all(), int(total or 0)


async def get_execution(session: AsyncSession, id_: int) -> Execution | None:
    return await session.get(Execution, id_, populate_existing=True)


async def get_executions(session: AsyncSession, ids: Iterable[int]) -> dict[int, Execution]:
    wanted = set(ids)
    if not wanted:
        return {}
    stmt = (
        sa.select(Execution)
        .where(Execution.id.in_(wanted))
        .execution_options(populate_existing=True)
    )
    return {e.id: e for e in (await session.scalars(stmt)).unique()}


async def list_executions(
    session: AsyncSession, limit: int | None, offset: int
) -> tuple[Sequence[Execution], int]:
    total = await session.scalar(sa.select(sa.func.count(Execution.id)))
    stmt = sa.select(Execution).order_by(Execution.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return (await session.scalars(stmt)).unique().all(), int(total or 0)


async def claim_executions(
    session: AsyncSession, ids: Iterable[int], now: datetime, stale_before: datetime
) -> set[int]:
    """Mark the unsent NEW executions among ``ids`` as being submitted; returns those marked.

    An execution already marked by a submission still in flight is left alone, so a
    concurrent submission of it is refused instead of creating it twice; a mark older
    than ``stale_before`` (its submitter died) is taken over.
    """
    wanted = list(set(ids))
    if not wanted:
        return set()
    table = cast(sa.Table, Execution.__table__)
    claimed_at = table.c.submission_claimed_at
    stmt = (
        sa.update(table)
        .where(
            table.c.id.in_(wanted),
            table.c.execution_service_id.is_(None),
            table.c.execution_status_id == StatusId.NEW,
            sa.or_(claimed_at.is_(None), claimed_at < stale_before),
        )
        .values(submission_claimed_at=now)
        .returning(table.c.id)
    )
    return set((await session.execute(stmt)).scalars())


async def unclaim_executions(session: AsyncSession, ids: Iterable[int]) -> None:
    """Clear the in-flight mark of executions whose submission failed (they stay NEW)."""
    wanted = list(set(ids))
    if wanted:
        table = cast(sa.Table, Execution.__table__)
        await session.execute(
            sa.update(table).where(table.c.id.in_(wanted)).values(submission_claimed_at=None)
        )


async def mark_sent(session: AsyncSession, sent: Mapping[int, int]) -> None:
    """Record acceptance by the execution service: its id, everything placed, status SENT.

    One statement per batch (the service id picked by a ``CASE`` on the id), not one per
    execution: a batch's outcome is one round trip whatever its size.
    """
    if not sent:
        return
    table = cast(sa.Table, Execution.__table__)
    service_id = sa.case(
        {k: sa.literal(v, sa.Integer()) for k, v in sent.items()}, value=table.c.id
    )
    stmt = (
        sa.update(table)
        .where(table.c.id.in_(list(sent)), table.c.execution_service_id.is_(None))
        .values(
            execution_service_id=service_id,
            quantity_placed=table.c.quantity_ordered,
            execution_status_id=StatusId.SENT,
            submission_claimed_at=None,
            submission_key=None,
            version=table.c.version + 1,
        )
    )
    conn = await session.connection()
    await conn.execute(stmt)


async def delete_executions(session: AsyncSession, ids: Iterable[int]) -> None:
    wanted = list(set(ids))
    if wanted:
        await session.execute(sa.delete(Execution).where(Execution.id.in_(wanted)))


async def unrecorded_with_keys(session: AsyncSession, keys: Iterable[str]) -> dict[int, Execution]:
    """Executions still waiting for the recording of a send under one of ``keys``."""
    wanted = set(keys)
    if not wanted:
        return {}
    stmt = (
        sa.select(Execution)
        .where(Execution.submission_key.in_(wanted), Execution.execution_service_id.is_(None))
        .execution_options(populate_existing=True)
    )
    return {e.id: e for e in (await session.scalars(stmt)).unique()}


async def keep_for_resend(session: AsyncSession, ids: Iterable[int], key: str) -> None:
    """Release executions whose answer could not be recorded, remembering the key sent."""
    wanted = list(set(ids))
    if wanted:
        table = cast(sa.Table, Execution.__table__)
        await session.execute(
            sa.update(table)
            .where(table.c.id.in_(wanted), table.c.execution_service_id.is_(None))
            .values(submission_claimed_at=None, submission_key=key)
        )


async def service_ids_held(session: AsyncSession, service_ids: Iterable[int]) -> dict[int, int]:
    """``execution_service_id`` → our execution id, for those ids already stored."""
    wanted = set(service_ids)
    if not wanted:
        return {}
    stmt = sa.select(Execution.execution_service_id, Execution.id).where(
        Execution.execution_service_id.in_(wanted)
    )
    rows = (await session.execute(stmt)).all()
    return {int(es): int(id_) for es, id_ in rows if es is not None}
