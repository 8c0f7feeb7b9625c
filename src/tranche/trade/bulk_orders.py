"""``POST /api/v1/tradeOrders/bulk``: up to 1000 trade orders created all or nothing.

As the original's ``createTradeOrdersBulk``: every item is validated before anything
is written, then all are inserted in one transaction; one bad item and none is
created. The answer is the original's BulkTradeOrderResponseDTO either way, but where
the original repeated one message (the first failure) on every result, here each
failing item says what is wrong with it and the others say they were not created
because of it. An ``orderId`` already taken (in the database or earlier in the same
request) is that item's failure too; the original answered it with a 500 or a 400
depending on when the database noticed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.errors import field_path
from tranche.trade.mapping import trade_order_response
from tranche.trade.models import Blotter, TradeOrder
from tranche.trade.repository import TradeStore, existing_ids
from tranche.trade.schemas import (
    BulkTradeOrderResponse,
    BulkTradeOrderResult,
    TradeOrderCreate,
)

__all__ = ["create_trade_orders_bulk"]

CREATED = "Trade order created successfully"
NOT_CREATED = "Not created: the bulk is all or nothing and another trade order in it failed"


def _problem(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        text = "is required" if err.get("type") == "missing" else str(err.get("msg", ""))
        parts.append(f"{field_path(tuple(err.get('loc', ())))} {text}")
    return "; ".join(parts)


def _validated(items: Sequence[Any]) -> tuple[list[TradeOrderCreate | None], dict[int, str]]:
    """Each item as a TradeOrderCreate (None where invalid) and the problems by index."""
    orders: list[TradeOrderCreate | None] = []
    problems: dict[int, str] = {}
    first_index: dict[int, int] = {}
    for index, item in enumerate(items):
        try:
            order = TradeOrderCreate.model_validate(item)
        except ValidationError as exc:
            orders.append(None)
            problems[index] = _problem(exc)
            continue
        orders.append(order)
        earlier = first_index.setdefault(order.order_id, index)
        if earlier != index:
            problems[index] = f"orderId {order.order_id} duplicates request index {earlier}"
    return orders, problems


async def _stored_conflicts(
    session: AsyncSession, orders: Sequence[TradeOrderCreate]
) -> dict[int, str]:
    """Problems only the database can tell: unknown blotters, orderIds already taken."""
    problems: dict[int, str] = {}
    blotters = await existing_ids(session, Blotter, {o.blotter_id for o in orders if o.blotter_id})
    wanted = {o.order_id for o in orders}
    taken = set(
        await session.scalars(sa.select(TradeOrder.order_id).where(TradeOrder.order_id.in_(wanted)))
    )
    for index, order in enumerate(orders):
        if order.blotter_id is not None and order.blotter_id not in blotters:
            problems[index] = f"blotterId blotter {order.blotter_id} does not exist"
        elif order.order_id in taken:
            problems[index] = f"orderId a trade order with orderId {order.order_id} exists"
    return problems


def _failure(total: int, problems: dict[int, str]) -> BulkTradeOrderResponse:
    first = min(problems)
    results = [
        BulkTradeOrderResult(
            request_index=i,
            status="FAILURE",
            message=(
                f"Validation failed for trade order at index {i}: {problems[i]}"
                if i in problems
                else NOT_CREATED
            ),
            trade_order=None,
        )
        for i in range(total)
    ]
    return BulkTradeOrderResponse(
        status="FAILURE",
        message="Bulk operation failed due to validation errors: "
        f"Validation failed for trade order at index {first}: {problems[first]}",
        total_requested=total,
        successful=0,
        failed=total,
        results=results,
    )


def _row(order: TradeOrderCreate, now: datetime) -> TradeOrder:
    return TradeOrder(
        order_id=order.order_id,
        portfolio_id=order.portfolio_id,
        order_type=order.order_type,
        security_id=order.security_id,
        quantity=order.quantity,
        quantity_sent=Decimal(0),
        limit_price=order.limit_price,
        trade_timestamp=order.trade_timestamp or now,
        blotter_id=order.blotter_id,
        submitted=False,
        version=1,
    )


async def create_trade_orders_bulk(
    store: TradeStore, items: Sequence[Any]
) -> BulkTradeOrderResponse:
    """Create every item or none; the response says which happened and why."""
    validated, problems = _validated(items)
    if problems:
        return _failure(len(items), problems)
    orders = [o for o in validated if o is not None]
    try:
        async with store.write() as session:
            problems = await _stored_conflicts(session, orders)
            if problems:
                return _failure(len(items), problems)
            now = datetime.now(UTC)
            rows = [_row(order, now) for order in orders]
            session.add_all(rows)
            await session.flush()
            ids = [row.id for row in rows]
    except IntegrityError:
        # A concurrent create took one of the orderIds between the check and the insert.
        return _failure(len(items), {0: "orderId taken by a concurrent create; nothing created"})
    async with store.read() as session:
        stmt = sa.select(TradeOrder).where(TradeOrder.id.in_(ids))
        by_id = {o.id: o for o in await session.scalars(stmt)}
    results = [
        BulkTradeOrderResult(
            request_index=i,
            status="SUCCESS",
            message=CREATED,
            trade_order=trade_order_response(by_id[id_]),
        )
        for i, id_ in enumerate(ids)
    ]
    return BulkTradeOrderResponse(
        status="SUCCESS",
        message="All trade orders created successfully",
        total_requested=len(items),
        successful=len(ids),
        failed=0,
        results=results,
    )
