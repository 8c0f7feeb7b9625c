"""Turning trade-order submissions into executions, and undoing that when the execution
service refuses them.

Reserving happens in the caller's transaction with the trade orders row-locked:
each accepted submission inserts a NEW execution and adds its quantity to the
order's ``quantity_sent`` (version + 1). Undoing deletes the execution and gives
the quantity back; if nothing else touched the order meanwhile its version goes
back too, so a refused submission leaves the order exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from tranche.trade.models import TRADE_TYPES, Destination, Execution, StatusId, TradeOrder
from tranche.trade.repository import delete_executions, existing_ids, lock_trade_orders

__all__ = [
    "FULLY_SENT_TOLERANCE",
    "Refusal",
    "Reservation",
    "SubmissionItem",
    "is_fully_sent",
    "release",
    "reserve",
    "trade_type_id",
]

#: An order counts as submitted once less than this remains unsent (the original's rule).
FULLY_SENT_TOLERANCE = Decimal("0.01")
_TRADE_TYPE_IDS = {abbreviation: i for i, (abbreviation, _) in enumerate(TRADE_TYPES, start=1)}


@dataclass(frozen=True)
class SubmissionItem:
    trade_order_id: int
    quantity: Decimal
    destination_id: int


@dataclass(frozen=True)
class Reservation:
    """One submission that became an execution: what to give back if it is refused."""

    execution_id: int
    trade_order_id: int
    quantity: Decimal
    order_version_before: int
    order_version_after: int


@dataclass(frozen=True)
class Refusal:
    """A submission that was not accepted; ``field`` names the request field at fault."""

    kind: Literal["not_found", "invalid"]
    message: str
    field: str | None = None


def trade_type_id(order_type: str) -> int | None:
    """The seeded trade_type id for an order type (BUY → 1 ... EXRC → 5)."""
    return _TRADE_TYPE_IDS.get(order_type.strip().upper())


def is_fully_sent(order: TradeOrder) -> bool:
    return abs(order.quantity - order.quantity_sent) <= FULLY_SENT_TOLERANCE


def _check(
    order: TradeOrder | None, item: SubmissionItem, destinations: set[int]
) -> Refusal | None:
    if order is None:
        return Refusal("not_found", "Trade order not found", "tradeOrderId")
    if order.submitted:
        return Refusal("invalid", "Trade order is already submitted", "tradeOrderId")
    remaining = order.quantity - order.quantity_sent
    if item.quantity > remaining:
        return Refusal(
            "invalid",
            f"Quantity {item.quantity} exceeds the unsent quantity {remaining.normalize()} "
            f"of trade order {order.id}",
            "quantity",
        )
    if trade_type_id(order.order_type) is None:
        return Refusal("invalid", f"Unknown order_type '{order.order_type}'", None)
    if item.destination_id not in destinations:
        return Refusal("invalid", f"Destination not found: {item.destination_id}", "destinationId")
    return None


async def reserve(
    session: AsyncSession, items: Sequence[SubmissionItem]
) -> list[Reservation | Refusal]:
    """Create one NEW execution per acceptable item; the result is in request order."""
    orders = await lock_trade_orders(session, (i.trade_order_id for i in items))
    destinations = await existing_ids(session, Destination, (i.destination_id for i in items))
    now = datetime.now(UTC)
    results: dict[int, Reservation | Refusal] = {}
    pending: list[tuple[int, Execution, TradeOrder, int]] = []
    for index, item in enumerate(items):
        order = orders.get(item.trade_order_id)
        refusal = _check(order, item, destinations)
        if refusal is not None or order is None:
            results[index] = refusal or Refusal("not_found", "Trade order not found")
            continue
        execution = Execution(
            execution_timestamp=now,
            execution_status_id=StatusId.NEW,
            blotter_id=order.blotter_id,
            trade_type_id=trade_type_id(order.order_type),
            trade_order_id=order.id,
            destination_id=item.destination_id,
            quantity_ordered=item.quantity,
            quantity_placed=Decimal(0),
            quantity_filled=Decimal(0),
            limit_price=order.limit_price,
            version=1,
        )
        session.add(execution)
        before = order.version
        order.quantity_sent += item.quantity
        order.submitted = is_fully_sent(order)
        order.version = before + 1
        pending.append((index, execution, order, before))
    await session.flush()
    for index, execution, order, before in pending:
        results[index] = Reservation(
            execution.id, order.id, execution.quantity_ordered, before, order.version
        )
    return [results[i] for i in range(len(items))]


async def release(session: AsyncSession, reservations: Sequence[Reservation]) -> None:
    """Undo reservations: delete their executions and give the quantities back."""
    if not reservations:
        return
    orders = await lock_trade_orders(session, (r.trade_order_id for r in reservations))
    await delete_executions(session, (r.execution_id for r in reservations))
    for r in reservations:
        order = orders.get(r.trade_order_id)
        if order is None:
            continue
        order.quantity_sent = max(order.quantity_sent - r.quantity, Decimal(0))
        order.submitted = is_fully_sent(order)
        # Back to the old version only if the order is back to the old state.
        order.version = (
            r.order_version_before if order.version == r.order_version_after else order.version + 1
        )
    await session.flush()
