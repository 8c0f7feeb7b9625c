"""Creating, changing and deleting trade orders and executions.

A change or delete names the version it was made against; a stale one is a
:class:`VersionConflict` (409), never a silent overwrite.

An execution created directly (``POST /api/v1/executions``) counts against its
trade order like a submitted one: ``quantity_sent`` is always the sum of the
order's executions' ordered quantities, so an order can never be over-allocated
whichever way its executions were made.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.errors import Conflict, InvalidInput, NotFound, VersionConflict
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
    has_executions,
    lock_trade_orders,
    order_id_exists,
)
from tranche.trade.reservation import is_fully_sent
from tranche.trade.schemas import (
    ExecutionCreate,
    ExecutionUpdate,
    TradeOrderCreate,
    TradeOrderUpdate,
)

__all__ = [
    "create_execution",
    "create_trade_order",
    "delete_execution",
    "delete_trade_order",
    "update_execution",
    "update_trade_order",
]


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


async def _check_references(session: AsyncSession, body: ExecutionCreate) -> None:
    references = (
        ("executionStatusId", ExecutionStatus, body.execution_status_id),
        ("blotterId", Blotter, body.blotter_id),
        ("tradeTypeId", TradeType, body.trade_type_id),
        ("destinationId", Destination, body.destination_id),
    )
    for field, model, value in references:
        if value is not None and not await existing_ids(session, model, [value]):
            raise InvalidInput(field, f"{model.__tablename__} {value} does not exist")


async def create_execution(store: TradeStore, body: ExecutionCreate) -> Execution:
    async with store.write() as session:
        orders = await lock_trade_orders(session, [body.trade_order_id])
        order = orders.get(body.trade_order_id)
        if order is None:
            raise InvalidInput("tradeOrderId", f"trade order {body.trade_order_id} does not exist")
        await _check_references(session, body)
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


def _check_version(what: str, id_: int, stored: int, given: int) -> None:
    if stored != given:
        raise VersionConflict(
            f"Version mismatch for {what} {id_}: expected {stored}, got {given}",
            current_version=stored,
        )


async def _locked_order(session: AsyncSession, id_: int) -> TradeOrder:
    order = (await lock_trade_orders(session, [id_])).get(id_)
    if order is None:
        raise NotFound(f"Trade order not found: {id_}")
    return order


async def update_trade_order(store: TradeStore, id_: int, body: TradeOrderUpdate) -> TradeOrder:
    """PUT: every field replaced; ``quantitySent`` stays, ``submitted`` follows from it."""
    async with store.write() as session:
        order = await _locked_order(session, id_)
        _check_version("trade order", id_, order.version, body.version)
        if body.blotter_id is not None and not await existing_ids(
            session, Blotter, [body.blotter_id]
        ):
            raise InvalidInput("blotterId", f"blotter {body.blotter_id} does not exist")
        if body.order_id != order.order_id and await order_id_exists(session, body.order_id):
            raise _taken(body.order_id)
        if body.quantity < order.quantity_sent:
            raise InvalidInput(
                "quantity",
                f"must not be below the quantity already sent ({order.quantity_sent.normalize()})",
            )
        order.order_id = body.order_id
        order.portfolio_id = body.portfolio_id
        order.order_type = body.order_type
        order.security_id = body.security_id
        order.quantity = body.quantity
        order.limit_price = body.limit_price
        order.trade_timestamp = body.trade_timestamp or order.trade_timestamp
        order.blotter_id = body.blotter_id
        order.submitted = is_fully_sent(order)
        order.version += 1
        try:
            await session.flush()
        except IntegrityError:
            raise _taken(body.order_id) from None
    async with store.read() as session:
        updated = await get_trade_order(session, id_)
    assert updated is not None
    return updated


async def delete_trade_order(store: TradeStore, id_: int, version: int) -> None:
    """DELETE ?version=: refused while the order has executions (they reference it)."""
    async with store.write() as session:
        order = await _locked_order(session, id_)
        _check_version("trade order", id_, order.version, version)
        if await has_executions(session, id_):
            raise Conflict(f"Trade order {id_} has executions and cannot be deleted")
        await session.delete(order)


async def _editable_execution(
    session: AsyncSession, id_: int, version: int
) -> tuple[Execution, TradeOrder]:
    """The execution and its (locked) order, if a change made against ``version`` may apply."""
    execution = await get_execution(session, id_)
    if execution is None:
        raise NotFound(f"Execution not found: {id_}")
    order = await _locked_order(session, execution.trade_order_id)
    execution = await get_execution(session, id_)  # re-read under the order's lock
    assert execution is not None
    _check_version("execution", id_, execution.version, version)
    if execution.submission_claimed_at is not None or execution.submission_key is not None:
        raise Conflict(f"Execution {id_} is being submitted to the execution service")
    return execution, order


async def update_execution(store: TradeStore, id_: int, body: ExecutionUpdate) -> Execution:
    """PUT: every field replaced. A change of ``quantityOrdered`` moves the order's
    ``quantitySent`` with it, and is refused once the execution service has the execution."""
    async with store.write() as session:
        execution, order = await _editable_execution(session, id_, body.version)
        if body.trade_order_id != execution.trade_order_id:
            raise InvalidInput("tradeOrderId", "cannot be changed; create a new execution")
        await _check_references(session, body)
        delta = body.quantity_ordered - execution.quantity_ordered
        if delta and execution.execution_service_id is not None:
            raise InvalidInput(
                "quantityOrdered", "cannot be changed once sent to the execution service"
            )
        if order.quantity_sent + delta > order.quantity:
            remaining = (order.quantity - order.quantity_sent).normalize()
            raise InvalidInput(
                "quantityOrdered",
                f"exceeds the unsent quantity {remaining} of trade order {order.id}",
            )
        if delta:
            order.quantity_sent += delta
            order.submitted = is_fully_sent(order)
            order.version += 1
        execution.execution_timestamp = body.execution_timestamp or execution.execution_timestamp
        execution.execution_status_id = body.execution_status_id
        execution.blotter_id = body.blotter_id
        execution.trade_type_id = body.trade_type_id
        execution.destination_id = body.destination_id
        execution.quantity_ordered = body.quantity_ordered
        execution.quantity_placed = body.quantity_placed
        execution.quantity_filled = body.quantity_filled
        execution.limit_price = body.limit_price
        execution.execution_service_id = body.execution_service_id
        execution.version += 1
        await session.flush()
    async with store.read() as session:
        updated = await get_execution(session, id_)
    assert updated is not None
    return updated


async def delete_execution(store: TradeStore, id_: int, version: int) -> None:
    """DELETE ?version=: the order gets the quantity back. Refused once the execution
    service has the execution (it would be left orphaned there)."""
    async with store.write() as session:
        execution, order = await _editable_execution(session, id_, version)
        if execution.execution_service_id is not None:
            raise Conflict(
                f"Execution {id_} was sent to the execution service "
                f"(executionServiceId {execution.execution_service_id}) and cannot be deleted"
            )
        order.quantity_sent = max(order.quantity_sent - execution.quantity_ordered, Decimal(0))
        order.submitted = is_fully_sent(order)
        order.version += 1
        await session.delete(execution)
