"""``GET /api/v2/tradeOrders`` and ``/api/v2/executions``: one page, filtered and sorted
in SQL.

Parameter names and the page shapes are the original's (``tradeOrders`` /
``executions`` and ``pagination``). The original also filtered and sorted by ``portfolio.name`` and
``security.ticker``, which it looked up in the portfolio and security services;
tranche's trade service has no client for those, so those parameters are refused
with a 400 naming them, and ``portfolio``/``security`` carry the ids with a null
name/ticker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tranche.core.errors import InvalidInput
from tranche.trade.models import (
    Blotter,
    Destination,
    Execution,
    ExecutionStatus,
    TradeOrder,
    TradeType,
)

__all__ = [
    "EXECUTION_SORTABLE",
    "SORTABLE",
    "ExecutionFilter",
    "TradeOrderFilter",
    "page_of_executions",
    "page_of_trade_orders",
    "parse_sort",
]

SORTABLE: dict[str, Any] = {
    "id": TradeOrder.id,
    "orderId": TradeOrder.order_id,
    "orderType": TradeOrder.order_type,
    "portfolioId": TradeOrder.portfolio_id,
    "securityId": TradeOrder.security_id,
    "quantity": TradeOrder.quantity,
    "quantitySent": TradeOrder.quantity_sent,
    "limitPrice": TradeOrder.limit_price,
    "tradeTimestamp": TradeOrder.trade_timestamp,
    "submitted": TradeOrder.submitted,
    "blotter.abbreviation": Blotter.abbreviation,
}


@dataclass
class TradeOrderFilter:
    id: int | None = None
    order_id: int | None = None
    order_types: list[str] = field(default_factory=list)
    blotters: list[str] = field(default_factory=list)
    submitted: bool | None = None
    ranges: dict[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)


_STATUS = aliased(ExecutionStatus)
_EXEC_BLOTTER = aliased(Blotter)
_TYPE = aliased(TradeType)
_DESTINATION = aliased(Destination)
EXECUTION_SORTABLE: dict[str, Any] = {
    "id": Execution.id,
    "executionTimestamp": Execution.execution_timestamp,
    "tradeOrderId": Execution.trade_order_id,
    "quantityOrdered": Execution.quantity_ordered,
    "quantityPlaced": Execution.quantity_placed,
    "quantityFilled": Execution.quantity_filled,
    "limitPrice": Execution.limit_price,
    "executionServiceId": Execution.execution_service_id,
    "executionStatus.abbreviation": _STATUS.abbreviation,
    "blotter.abbreviation": _EXEC_BLOTTER.abbreviation,
    "tradeType.abbreviation": _TYPE.abbreviation,
    "destination.abbreviation": _DESTINATION.abbreviation,
}


@dataclass
class ExecutionFilter:
    id: int | None = None
    trade_order_id: int | None = None
    execution_service_id: int | None = None
    #: sort/filter key (``executionStatus.abbreviation`` …) → accepted abbreviations
    codes: dict[str, list[str]] = field(default_factory=dict)
    ranges: dict[str, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)


def parse_sort(
    sort: str | None, sortable: dict[str, Any] = SORTABLE, tiebreak: Any = TradeOrder.id
) -> list[Any]:
    """``-quantity,tradeTimestamp`` → ORDER BY terms; an unknown field is a 400."""
    terms: list[Any] = []
    for raw in (sort or "").split(","):
        name = raw.strip()
        if not name:
            continue
        descending = name.startswith("-")
        column = sortable.get(name.lstrip("-"))
        if column is None:
            raise InvalidInput(
                "sort", f"unknown sort field '{name.lstrip('-')}'; use {', '.join(sortable)}"
            )
        terms.append(column.desc() if descending else column.asc())
    return [*terms, tiebreak.asc()]


def _range_conditions(
    ranges: dict[str, tuple[Decimal | None, Decimal | None]], columns: dict[str, Any]
) -> list[Any]:
    where: list[Any] = []
    for name, (low, high) in ranges.items():
        if low is not None and high is not None and low > high:
            raise InvalidInput(f"{name}.min", f"({low}) cannot be greater than {name}.max ({high})")
        if low is not None:
            where.append(columns[name] >= low)
        if high is not None:
            where.append(columns[name] <= high)
    return where


def _conditions(f: TradeOrderFilter) -> list[Any]:
    where: list[Any] = []
    if f.id is not None:
        where.append(TradeOrder.id == f.id)
    if f.order_id is not None:
        where.append(TradeOrder.order_id == f.order_id)
    if f.order_types:
        where.append(TradeOrder.order_type.in_(f.order_types))
    if f.blotters:
        where.append(Blotter.abbreviation.in_(f.blotters))
    if f.submitted is not None:
        where.append(TradeOrder.submitted.is_(f.submitted))
    columns = {"quantity": TradeOrder.quantity, "quantitySent": TradeOrder.quantity_sent}
    return where + _range_conditions(f.ranges, columns)


async def page_of_trade_orders(
    session: AsyncSession, f: TradeOrderFilter, order_by: Sequence[Any], limit: int, offset: int
) -> tuple[Sequence[TradeOrder], dict[str, Any]]:
    base = sa.select(TradeOrder).outerjoin(Blotter, TradeOrder.blotter_id == Blotter.id)
    return await _page(session, base, _conditions(f), order_by, limit, offset)


async def page_of_executions(
    session: AsyncSession, f: ExecutionFilter, order_by: Sequence[Any], limit: int, offset: int
) -> tuple[Sequence[Execution], dict[str, Any]]:
    base = (
        sa.select(Execution)
        .join(_STATUS, Execution.execution_status_id == _STATUS.id)
        .join(_DESTINATION, Execution.destination_id == _DESTINATION.id)
        .outerjoin(_EXEC_BLOTTER, Execution.blotter_id == _EXEC_BLOTTER.id)
        .outerjoin(_TYPE, Execution.trade_type_id == _TYPE.id)
    )
    where: list[Any] = []
    for column, value in (
        (Execution.id, f.id),
        (Execution.trade_order_id, f.trade_order_id),
        (Execution.execution_service_id, f.execution_service_id),
    ):
        if value is not None:
            where.append(column == value)
    for key, values in f.codes.items():
        if values:
            where.append(EXECUTION_SORTABLE[key].in_(values))
    columns = {
        "quantityOrdered": Execution.quantity_ordered,
        "quantityPlaced": Execution.quantity_placed,
        "quantityFilled": Execution.quantity_filled,
    }
    where += _range_conditions(f.ranges, columns)
    return await _page(session, base, where, order_by, limit, offset)


async def _page(
    session: AsyncSession,
    base: Any,
    where: list[Any],
    order_by: Sequence[Any],
    limit: int,
    offset: int,
) -> tuple[Sequence[Any], dict[str, Any]]:
    count = sa.select(sa.func.count()).select_from(base.where(*where).subquery())
    total = int(await session.scalar(count) or 0)
    stmt = base.where(*where).order_by(*order_by).limit(limit).offset(offset)
    rows = (await session.scalars(stmt)).unique().all()
    pages = math.ceil(total / limit) if total else 0
    current = offset // limit
    pagination = {
        "totalElements": total,
        "totalPages": pages,
        "currentPage": current,
        "pageSize": limit,
        "hasNext": offset + len(rows) < total,
        "hasPrevious": offset > 0,
    }
    return rows, pagination
