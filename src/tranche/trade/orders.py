"""Creating trade orders and executions.

An execution created directly (``POST /api/v1/executions``) counts against its
trade order like a submitted one: ``quantity_sent`` is always the sum of the
order's executions' ordered quantities, so an order can never be over-allocated
whichever way its executions were made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError

from tranche.core.errors import Conflict, InvalidInput
from tranche.trade.models import (
    Blotter,
    Destination,
    Execution,
    ExecutionStatus,
    TradeOrder,
    TradeType,
)
from tranche.trade.repository import (
    TradeStore,
    existing_ids,
    get_execution,
    get_trade_order,
    lock_trade_orders,
    order_id_exists,
)
from tranche.trade.reservation import is_fully_sent
from tranche.trade.schemas import ExecutionCreate, TradeOrderCreate

__all__ = ["create_execution", "create_trade_order"]


def _taken(order_id: int) -> Conflict:
    problem = f"a trade order with orderId {order_id} exists"
    return Conflict(f"Validation failed: orderId {problem}", field="orderId", problem=problem)


async def create_trade_order(store: TradeStore, body: TradeOrderCreate) -> TradeOrder:
    async with store.write() as session:
        if body.blotter_id is not None and not await existing_ids(
            session, Blotter, [body.blotter_id]
        ):
            raise InvalidInput("blotterId", f"blotter {body.blotter_id} does not exist")
        if await order_id_exists(session, body.order_id):
            raise _taken(body.order_id)
        order = TradeOrder(
            order_id=body.order_id,
            portfolio_id=body.portfolio_id,
            order_type=body.order_type,
            security_id=body.security_id,
            quantity=body.quantity,
            quantity_sent=Decimal(0),
            limit_price=body.limit_price,
            trade_timestamp=body.trade_timestamp or datetime.now(UTC),
            blotter_id=body.blotter_id,
            submitted=False,
            version=1,
        )
        session.add(order)
        try:
            await session.flush()
        except IntegrityError:
            # Lost a race with a concurrent create of the same orderId.
            raise _taken(body.order_id) from None
        order_pk = order.id
    async with store.read() as session:
        created = await get_trade_order(session, order_pk)
    assert created is not None
    return created


async def create_execution(store: TradeStore, body: ExecutionCreate) -> Execution:
    async with store.write() as session:
        orders = await lock_trade_orders(session, [body.trade_order_id])
        order = orders.get(body.trade_order_id)
        if order is None:
            raise InvalidInput("tradeOrderId", f"trade order {body.trade_order_id} does not exist")
        references = (
            ("executionStatusId", ExecutionStatus, body.execution_status_id),
            ("blotterId", Blotter, body.blotter_id),
            ("tradeTypeId", TradeType, body.trade_type_id),
            ("destinationId", Destination, body.destination_id),
        )
        for field, model, value in references:
            if value is not None and not await existing_ids(session, model, [value]):
                raise InvalidInput(field, f"{model.__tablename__} {value} does not exist")
        remaining = order.quantity - order.quantity_sent
        if body.quantity_ordered > remaining:
            raise InvalidInput(
                "quantityOrdered",
                f"{body.quantity_ordered} exceeds the unsent quantity {remaining.normalize()} "
                f"of trade order {order.id}",
            )
        execution = Execution(
            execution_timestamp=body.execution_timestamp or datetime.now(UTC),
            execution_status_id=body.execution_status_id,
            blotter_id=body.blotter_id,
            trade_type_id=body.trade_type_id,
            trade_order_id=order.id,
            destination_id=body.destination_id,
            quantity_ordered=body.quantity_ordered,
            quantity_placed=body.quantity_placed,
            quantity_filled=body.quantity_filled,
            limit_price=body.limit_price,
            execution_service_id=body.execution_service_id,
            version=1,
        )
        session.add(execution)
        order.quantity_sent += body.quantity_ordered
        order.submitted = is_fully_sent(order)
        order.version += 1
        await session.flush()
        execution_pk = execution.id
    async with store.read() as session:
        created = await get_execution(session, execution_pk)
    assert created is not None
    return created
