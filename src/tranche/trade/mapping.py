"""Conversions: rows to our response DTOs, and executions to the execution service's post DTO."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from tranche.trade.models import Blotter, Destination, Execution, ExecutionStatus, TradeOrder
from tranche.trade.models import TradeType as TradeTypeRow
from tranche.trade.schemas import (
    BlotterResponse,
    CodeResponse,
    ExecutionResponse,
    TradeOrderResponse,
)

__all__ = [
    "blotter_response",
    "chunked",
    "code_response",
    "execution_post",
    "execution_response",
    "trade_order_response",
]

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def execution_post(execution: Execution) -> dict[str, Any]:
    """The execution service's ExecutionPostDTO for one of our executions (reference B6).

    ``quantity`` is what was ordered; ``version`` is always 1, as the original sent it.
    Decimals stay :class:`~decimal.Decimal` so the JSON encoder writes them digit for digit.
    """
    status = execution.execution_status.abbreviation if execution.execution_status else "NEW"
    return {
        "executionStatus": status,
        "tradeType": execution.trade_type.abbreviation if execution.trade_type else None,
        "destination": execution.destination.abbreviation,
        "securityId": execution.trade_order.security_id,
        "quantity": execution.quantity_ordered,
        "limitPrice": execution.limit_price,
        "tradeServiceExecutionId": execution.id,
        "version": 1,
    }


def blotter_response(blotter: Blotter) -> BlotterResponse:
    return BlotterResponse(
        id=blotter.id, abbreviation=blotter.abbreviation, name=blotter.name, version=blotter.version
    )


def code_response(row: TradeTypeRow | ExecutionStatus | Destination) -> CodeResponse:
    return CodeResponse(
        id=row.id, abbreviation=row.abbreviation, description=row.description, version=row.version
    )


def trade_order_response(order: TradeOrder) -> TradeOrderResponse:
    return TradeOrderResponse(
        id=order.id,
        order_id=order.order_id,
        portfolio_id=order.portfolio_id,
        order_type=order.order_type,
        security_id=order.security_id,
        quantity=order.quantity,
        quantity_sent=order.quantity_sent,
        limit_price=order.limit_price,
        trade_timestamp=order.trade_timestamp,
        blotter=blotter_response(order.blotter) if order.blotter else None,
        submitted=bool(order.submitted),
        version=order.version,
    )


def execution_response(execution: Execution) -> ExecutionResponse:
    return ExecutionResponse(
        id=execution.id,
        execution_timestamp=execution.execution_timestamp,
        execution_status=code_response(execution.execution_status),
        blotter=blotter_response(execution.blotter) if execution.blotter else None,
        trade_type=code_response(execution.trade_type) if execution.trade_type else None,
        trade_order=trade_order_response(execution.trade_order),
        destination=code_response(execution.destination),
        quantity_ordered=execution.quantity_ordered,
        quantity_placed=execution.quantity_placed,
        quantity_filled=execution.quantity_filled,
        limit_price=execution.limit_price,
        average_price=execution.average_price,
        version=execution.version,
        execution_service_id=execution.execution_service_id,
    )
