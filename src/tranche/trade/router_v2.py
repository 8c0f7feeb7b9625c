"""``/api/v2`` routes of the trade service: paged, filtered, sorted lists (the original's
TradeOrderV2Controller and ExecutionV2Controller)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from tranche.core.errors import InvalidInput
from tranche.core.exactjson import dumps
from tranche.trade.listing import (
    EXECUTION_SORTABLE,
    ExecutionFilter,
    TradeOrderFilter,
    page_of_executions,
    page_of_trade_orders,
    parse_sort,
)
from tranche.trade.mapping import blotter_response, code_response
from tranche.trade.models import Execution, TradeOrder
from tranche.trade.routing import INT32, ExactJsonRoute, TradeDep

__all__ = ["build_v2_router"]

Amount = Annotated[Decimal | None, Query(ge=0, max_digits=18, decimal_places=8)]


def _csv(value: str | None) -> list[str]:
    return [v.strip().upper() for v in (value or "").split(",") if v.strip()]


def _v2(order: TradeOrder) -> dict[str, Any]:
    blotter = blotter_response(order.blotter).model_dump(by_alias=True) if order.blotter else None
    return {
        "id": order.id,
        "orderId": order.order_id,
        "portfolio": {"portfolioId": order.portfolio_id, "name": None},
        "orderType": order.order_type,
        "security": {"securityId": order.security_id, "ticker": None},
        "quantity": order.quantity,
        "quantitySent": order.quantity_sent,
        "limitPrice": order.limit_price,
        "tradeTimestamp": order.trade_timestamp,
        "blotter": blotter,
        "submitted": bool(order.submitted),
        "version": order.version,
    }


def _execution_v2(execution: Execution) -> dict[str, Any]:
    def code(row: Any) -> dict[str, Any] | None:
        return code_response(row).model_dump(by_alias=True) if row is not None else None

    order = execution.trade_order
    blotter = execution.blotter
    return {
        "id": execution.id,
        "executionTimestamp": execution.execution_timestamp,
        "executionStatus": code(execution.execution_status),
        "blotter": blotter_response(blotter).model_dump(by_alias=True) if blotter else None,
        "tradeType": code(execution.trade_type),
        "tradeOrder": {
            "id": order.id,
            "orderId": order.order_id,
            "portfolio": {"portfolioId": order.portfolio_id, "name": None},
            "security": {"securityId": order.security_id, "ticker": None},
        },
        "destination": code(execution.destination),
        "quantityOrdered": execution.quantity_ordered,
        "quantityPlaced": execution.quantity_placed,
        "quantityFilled": execution.quantity_filled,
        "limitPrice": execution.limit_price,
        "executionServiceId": execution.execution_service_id,
        "version": execution.version,
    }


def _unsupported(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None:
            raise InvalidInput(
                name.replace("_", "."), "is not supported: tranche has no portfolio/security lookup"
            )


def build_v2_router() -> APIRouter:
    router = APIRouter(route_class=ExactJsonRoute)

    @router.get("/api/v2/tradeOrders", tags=["trade orders"])
    async def trade_orders_v2(
        ctx: TradeDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=INT32)] = 0,
        sort: str | None = None,
        id: Annotated[int | None, Query(ge=-INT32 - 1, le=INT32)] = None,
        order_id: Annotated[int | None, Query(alias="orderId", ge=-INT32 - 1, le=INT32)] = None,
        order_type: Annotated[str | None, Query(alias="orderType", max_length=200)] = None,
        portfolio_name: Annotated[str | None, Query(alias="portfolio.name")] = None,
        security_ticker: Annotated[str | None, Query(alias="security.ticker")] = None,
        quantity_min: Annotated[Amount, Query(alias="quantity.min")] = None,
        quantity_max: Annotated[Amount, Query(alias="quantity.max")] = None,
        sent_min: Annotated[Amount, Query(alias="quantitySent.min")] = None,
        sent_max: Annotated[Amount, Query(alias="quantitySent.max")] = None,
        blotter: Annotated[str | None, Query(alias="blotter.abbreviation", max_length=200)] = None,
        submitted: bool | None = None,
    ) -> Response:
        """``{"tradeOrders": [...], "pagination": {...}}``; ``sort`` is comma-separated
        fields, ``-`` for descending. 400 naming the parameter for any bad one."""
        for name, value in (
            ("portfolio.name", portfolio_name),
            ("security.ticker", security_ticker),
        ):
            if value is not None:
                raise InvalidInput(
                    name, "is not supported: tranche has no portfolio/security lookup"
                )
        order_by = parse_sort(sort)
        f = TradeOrderFilter(
            id=id,
            order_id=order_id,
            order_types=_csv(order_type),
            blotters=[b.strip() for b in (blotter or "").split(",") if b.strip()],
            submitted=submitted,
            ranges={"quantity": (quantity_min, quantity_max), "quantitySent": (sent_min, sent_max)},
        )
        async with ctx.store.read() as s:
            rows, pagination = await page_of_trade_orders(s, f, order_by, limit, offset)
        body = {"tradeOrders": [_v2(o) for o in rows], "pagination": pagination}
        return Response(dumps(body), media_type="application/json")

    @router.get("/api/v2/executions", tags=["executions"])
    async def executions_v2(
        ctx: TradeDep,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0, le=INT32)] = 0,
        sort: str | None = None,
        id: Annotated[int | None, Query(ge=-INT32 - 1, le=INT32)] = None,
        status: Annotated[str | None, Query(alias="executionStatus.abbreviation")] = None,
        blotter: Annotated[str | None, Query(alias="blotter.abbreviation")] = None,
        trade_type: Annotated[str | None, Query(alias="tradeType.abbreviation")] = None,
        trade_order_id: Annotated[
            int | None, Query(alias="tradeOrderId", ge=-INT32 - 1, le=INT32)
        ] = None,
        destination: Annotated[str | None, Query(alias="destination.abbreviation")] = None,
        portfolio_name: Annotated[str | None, Query(alias="portfolio.name")] = None,
        security_ticker: Annotated[str | None, Query(alias="security.ticker")] = None,
        ordered_min: Annotated[Amount, Query(alias="quantityOrdered.min")] = None,
        ordered_max: Annotated[Amount, Query(alias="quantityOrdered.max")] = None,
        placed_min: Annotated[Amount, Query(alias="quantityPlaced.min")] = None,
        placed_max: Annotated[Amount, Query(alias="quantityPlaced.max")] = None,
        filled_min: Annotated[Amount, Query(alias="quantityFilled.min")] = None,
        filled_max: Annotated[Amount, Query(alias="quantityFilled.max")] = None,
        execution_service_id: Annotated[
            int | None, Query(alias="executionServiceId", ge=-INT32 - 1, le=INT32)
        ] = None,
    ) -> Response:
        """``{"executions": [...], "pagination": {...}}``; decimals as exact numbers."""
        _unsupported(portfolio_name=portfolio_name, security_ticker=security_ticker)
        order_by = parse_sort(sort, EXECUTION_SORTABLE, Execution.id)
        f = ExecutionFilter(
            id=id,
            trade_order_id=trade_order_id,
            execution_service_id=execution_service_id,
            codes={
                "executionStatus.abbreviation": _csv(status),
                "blotter.abbreviation": [
                    b.strip() for b in (blotter or "").split(",") if b.strip()
                ],
                "tradeType.abbreviation": _csv(trade_type),
                "destination.abbreviation": _csv(destination),
            },
            ranges={
                "quantityOrdered": (ordered_min, ordered_max),
                "quantityPlaced": (placed_min, placed_max),
                "quantityFilled": (filled_min, filled_max),
            },
        )
        async with ctx.store.read() as s:
            rows, pagination = await page_of_executions(s, f, order_by, limit, offset)
        body = {"executions": [_execution_v2(e) for e in rows], "pagination": pagination}
        return Response(dumps(body), media_type="application/json")

    return router
