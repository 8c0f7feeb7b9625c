"""Queries on ``execution``: lookups, the filtered page, the optimistic fill update and
the bulk ``sent_timestamp`` update the outbox relay runs after the broker's ack."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import CursorResult, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.execution.models import execution_table as t

__all__ = [
    "SORT_FIELDS",
    "ListQuery",
    "apply_fill",
    "get",
    "get_many",
    "mark_sent",
    "page",
    "sent_timestamps",
]

#: ``sortBy`` names → columns (``ticker`` sorts by security id, as the original did:
#: tickers live in the security service).
SORT_FIELDS: dict[str, sa.Column[Any]] = {
    "id": t.c.id,
    "executionStatus": t.c.execution_status,
    "tradeType": t.c.trade_type,
    "destination": t.c.destination,
    "ticker": t.c.security_id,
    "quantity": t.c.quantity,
    "receivedTimestamp": t.c.received_timestamp,
    "sentTimestamp": t.c.sent_timestamp,
}
_IN_CHUNK = 5000


@dataclass
class ListQuery:
    """Filters are exact matches; each is a set of accepted values (None: no filter)."""

    offset: int = 0
    limit: int = 50
    statuses: Sequence[str] | None = None
    trade_types: Sequence[str] | None = None
    destinations: Sequence[str] | None = None
    security_ids: Sequence[str] | None = None
    sort: list[tuple[str, bool]] = field(default_factory=lambda: [("id", False)])

    def where(self) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.statuses is not None:
            out.append(sa.func.upper(t.c.execution_status).in_([s.upper() for s in self.statuses]))
        if self.trade_types is not None:
            out.append(sa.func.upper(t.c.trade_type).in_([s.upper() for s in self.trade_types]))
        if self.destinations is not None:
            out.append(sa.func.upper(t.c.destination).in_([s.upper() for s in self.destinations]))
        if self.security_ids is not None:
            out.append(t.c.security_id.in_(list(self.security_ids)))
        return out

    def order_by(self) -> list[sa.ColumnElement[Any]]:
        out: list[sa.ColumnElement[Any]] = []
        for name, descending in self.sort:
            col = SORT_FIELDS[name]
            out.append((col.desc() if descending else col.asc()).nulls_last())
        if not any(name == "id" for name, _ in self.sort):
            out.append(t.c.id.asc())  # a total order, so pages never overlap
        return out


async def page(session: AsyncSession, query: ListQuery) -> tuple[list[RowMapping], int]:
    """The rows of one page and the number of rows matching the filters."""
    where = query.where()
    total = (
        await session.execute(sa.select(sa.func.count()).select_from(t).where(*where))
    ).scalar()
    rows = (
        await session.execute(
            sa.select(t)
            .where(*where)
            .order_by(*query.order_by())
            .offset(query.offset)
            .limit(query.limit)
        )
    ).mappings()
    return list(rows), int(total or 0)


async def get(session: AsyncSession, execution_id: int) -> RowMapping | None:
    return (await session.execute(sa.select(t).where(t.c.id == execution_id))).mappings().first()


def _id_in(session: AsyncSession, ids: list[int]) -> sa.ColumnElement[bool]:
    """``id IN (...)``; on PostgreSQL one array parameter instead of one per id (one cached
    statement whatever the count, and no thousand-parameter compile per relay round)."""
    if session.get_bind().dialect.name == "postgresql":
        return t.c.id == sa.func.any(sa.bindparam("ids", ids, type_=ARRAY(sa.Integer)))
    return t.c.id.in_(ids)


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    batch: list[int] = []
    for i in ids:
        batch.append(i)
        if len(batch) == _IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


async def get_many(session: AsyncSession, ids: Iterable[int]) -> dict[int, RowMapping]:
    out: dict[int, RowMapping] = {}
    for batch in _chunks(ids):
        rows = await session.execute(sa.select(t).where(_id_in(session, batch)))
        for row in rows.mappings():
            out[row["id"]] = row
    return out


async def sent_timestamps(session: AsyncSession, ids: Iterable[int]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for batch in _chunks(ids):
        result = await session.execute(
            sa.select(t.c.id, t.c.sent_timestamp).where(
                _id_in(session, batch), t.c.sent_timestamp.is_not(None)
            )
        )
        out.update({int(i): ts for i, ts in result.all()})
    return out


# PostgreSQL's, built once with the ids as one array parameter: the hook runs it for every
# round of 500 events, and building the statement per call was half its Python.
_PG_MARK_SENT = (
    t.update()
    .where(
        t.c.id == sa.func.any(sa.bindparam("ids", type_=ARRAY(sa.Integer))),
        t.c.sent_timestamp.is_(None),
    )
    .values(sent_timestamp=sa.bindparam("at"))
)


async def mark_sent(session: AsyncSession, ids: Sequence[int], at: datetime) -> int:
    """Set ``sent_timestamp`` once (a redelivery keeps the first); ``version`` is untouched,
    since delivery is not a change a client must re-read (the original's C4 bug)."""
    if not ids:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        result = await session.execute(_PG_MARK_SENT, {"ids": list(ids), "at": at})
        return cast(CursorResult[Any], result).rowcount
    done = 0
    for batch in _chunks(ids):
        result = await session.execute(
            t.update()
            .where(_id_in(session, batch), t.c.sent_timestamp.is_(None))
            .values(sent_timestamp=at)
        )
        done += cast(CursorResult[Any], result).rowcount
    return done


async def apply_fill(
    session: AsyncSession,
    execution_id: int,
    expected_version: int,
    quantity_filled: Decimal,
    average_price: Decimal | None,
    status: str,
) -> bool:
    """Update a fill if the row is still at ``expected_version`` (False: someone was first)."""
    result = await session.execute(
        t.update()
        .where(t.c.id == execution_id, t.c.version == expected_version)
        .values(
            quantity_filled=quantity_filled,
            average_price=average_price,
            execution_status=status,
            version=t.c.version + 1,
        )
    )
    return cast(CursorResult[Any], result).rowcount == 1
