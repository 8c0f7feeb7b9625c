"""HTTP routes of the trade service: trade orders, executions, submission and the
health probes, with the original's paths and status codes (reference B). The lookups
are in :mod:`tranche.trade.router_lookups`, the v2 lists in :mod:`tranche.trade.router_v2`;
what they share (exact-decimal bodies, parameter types) in :mod:`tranche.trade.routing`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from tranche.core.openapi import response_header
from tranche.trade.bulk_orders import create_trade_orders_bulk
from tranche.trade.fills import apply_fill
from tranche.trade.mapping import execution_response, trade_order_response
from tranche.trade.orders import (
    create_execution,
    create_trade_order,
    delete_execution,
    delete_trade_order,
    update_execution,
    update_trade_order,
)
from tranche.trade.repository import (
    get_execution,
    get_trade_order,
    list_executions,
    list_trade_orders,
)
from tranche.trade.router_lookups import add_lookup_routes
from tranche.trade.routing import (
    INT32,
    JSON,
    STALE_OR_IN_USE,
    STALE_VERSION,
    ExactJsonRoute,
    Limit,
    NoExecute,
    Offset,
    PathId,
    TradeContext,
    TradeDep,
    VersionParam,
    not_found,
    rendered,
)
from tranche.trade.schemas import (
    BatchSubmitRequest,
    BatchSubmitResponse,
    BulkTradeOrderRequest,
    BulkTradeOrderResponse,
    ExecutionCreate,
    ExecutionResponse,
    ExecutionUpdate,
    FillRequest,
    TradeOrderCreate,
    TradeOrderResponse,
    TradeOrderSubmit,
    TradeOrderUpdate,
)

__all__ = ["ExactJsonRoute", "TradeContext", "TradeDep", "build_router", "rendered"]

#: What a submission can answer besides success (400/404/503 are documented for all).
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "The execution service refused it as a conflict"},
    502: {"description": "The execution service could not be reached or failed"},
}

#: The v1 lists' total (the original's header), sent when any paging parameter is given.
TOTAL_COUNT: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            "X-Total-Count": response_header(
                "All rows the list would have without paging; sent when limit, offset or "
                "a filter is given",
                {"type": "integer", "minimum": 0},
            )
        }
    }
}

#: A bulk create is refused with the original's FAILURE body, or with the uniform error
#: body when the request is not a list of 1-1000 items.
BULK_REFUSED: dict[str, Any] = {
    "description": "FAILURE: nothing created (each result says why), or a malformed request",
    "content": {
        JSON: {
            "schema": {
                "anyOf": [
                    {"$ref": "#/components/schemas/BulkTradeOrderResponse"},
                    {"$ref": "#/components/schemas/ErrorResponse"},
                ]
            }
        }
    },
}


def _trade_order_routes(router: APIRouter) -> None:
    @router.get(
        "/api/v1/tradeOrders",
        tags=["trade orders"],
        response_model=list[TradeOrderResponse],
        responses=TOTAL_COUNT,
    )
    async def trade_orders(
        ctx: TradeDep,
        limit: Limit = None,
        offset: Offset = None,
        order_id: Annotated[int | None, Query(ge=-INT32 - 1, le=INT32)] = None,
    ) -> Response:
        async with ctx.store.read() as s:
            rows, total = await list_trade_orders(s, limit, offset or 0, order_id)
        headers = None
        if limit is not None or offset is not None or order_id is not None:
            headers = {"X-Total-Count": str(total)}
        return rendered([trade_order_response(o) for o in rows], headers=headers)

    @router.post(
        "/api/v1/tradeOrders",
        status_code=201,
        tags=["trade orders"],
        response_model=TradeOrderResponse,
        responses={409: {"description": "orderId already taken"}},
    )
    async def new_trade_order(body: TradeOrderCreate, ctx: TradeDep) -> Response:
        return rendered(trade_order_response(await create_trade_order(ctx.store, body)), 201)

    @router.post(
        "/api/v1/tradeOrders/bulk",
        status_code=201,
        tags=["trade orders"],
        response_model=BulkTradeOrderResponse,
        responses={400: BULK_REFUSED},
    )
    async def bulk_trade_orders(body: BulkTradeOrderRequest, ctx: TradeDep) -> Response:
        """1-1000 trade orders, all or nothing: 201 SUCCESS; 400 FAILURE naming the bad
        items (or the uniform error body when the request itself is malformed)."""
        result = await create_trade_orders_bulk(ctx.store, body.trade_orders)
        return rendered(result, 201 if result.status == "SUCCESS" else 400)

    @router.post(
        "/api/v1/tradeOrders/batch/submit",
        tags=["submission"],
        response_model=BatchSubmitResponse,
        responses={207: {"model": BatchSubmitResponse, "description": "Some submissions failed"}},
    )
    async def batch_submit(
        body: BatchSubmitRequest, ctx: TradeDep, no_execute: NoExecute = False
    ) -> Response:
        """1-100 submissions. 200 SUCCESS, 207 PARTIAL, 200 FAILURE; 400 if invalid."""
        result = await ctx.submissions.submit_batch(body, no_execute)
        return rendered(result, 207 if result.status == "PARTIAL" else 200)

    @router.get(
        "/api/v1/tradeOrders/{id}", tags=["trade orders"], response_model=TradeOrderResponse
    )
    async def trade_order(id: PathId, ctx: TradeDep) -> Response:
        async with ctx.store.read() as s:
            row = await get_trade_order(s, id)
        if row is None:
            raise not_found("Trade order", id)
        return rendered(trade_order_response(row))

    @router.put(
        "/api/v1/tradeOrders/{id}",
        tags=["trade orders"],
        response_model=TradeOrderResponse,
        responses=STALE_VERSION,
    )
    async def change_trade_order(id: PathId, body: TradeOrderUpdate, ctx: TradeDep) -> Response:
        """Replace the order's fields. 404 unknown id; 409 stale ``version``."""
        return rendered(trade_order_response(await update_trade_order(ctx.store, id, body)))

    @router.delete(
        "/api/v1/tradeOrders/{id}",
        status_code=204,
        tags=["trade orders"],
        responses=STALE_OR_IN_USE,
    )
    async def remove_trade_order(id: PathId, version: VersionParam, ctx: TradeDep) -> Response:
        """204; 404 unknown id; 409 stale ``version`` or the order has executions."""
        await delete_trade_order(ctx.store, id, version)
        return Response(status_code=204)

    @router.post(
        "/api/v1/tradeOrders/{id}/submit",
        status_code=201,
        tags=["submission"],
        response_model=ExecutionResponse,
        responses=SUBMIT_RESPONSES,
    )
    async def submit_trade_order(
        id: PathId, body: TradeOrderSubmit, ctx: TradeDep, no_execute: NoExecute = False
    ) -> Response:
        execution = await ctx.submissions.submit_trade_order(id, body, no_execute)
        return rendered(execution_response(execution), 201)


def _execution_routes(router: APIRouter) -> None:
    @router.get(
        "/api/v1/executions",
        tags=["executions"],
        response_model=list[ExecutionResponse],
        responses=TOTAL_COUNT,
    )
    async def executions(ctx: TradeDep, limit: Limit = None, offset: Offset = None) -> Response:
        async with ctx.store.read() as s:
            rows, total = await list_executions(s, limit, offset or 0)
        headers = None
        if limit is not None or offset is not None:
            headers = {"X-Total-Count": str(total)}
        return rendered([execution_response(e) for e in rows], headers=headers)

    @router.post(
        "/api/v1/executions", status_code=201, tags=["executions"], response_model=ExecutionResponse
    )
    async def new_execution(body: ExecutionCreate, ctx: TradeDep) -> Response:
        return rendered(execution_response(await create_execution(ctx.store, body)), 201)

    @router.get("/api/v1/executions/{id}", tags=["executions"], response_model=ExecutionResponse)
    async def execution(id: PathId, ctx: TradeDep) -> Response:
        async with ctx.store.read() as s:
            row = await get_execution(s, id)
        if row is None:
            raise not_found("Execution", id)
        return rendered(execution_response(row))

    @router.put(
        "/api/v1/executions/{id}",
        tags=["executions"],
        response_model=ExecutionResponse,
        responses=STALE_VERSION,
    )
    async def change_execution(id: PathId, body: ExecutionUpdate, ctx: TradeDep) -> Response:
        """Replace the execution's fields. 404 unknown id; 409 stale ``version`` or in flight."""
        return rendered(execution_response(await update_execution(ctx.store, id, body)))

    @router.delete(
        "/api/v1/executions/{id}", status_code=204, tags=["executions"], responses=STALE_OR_IN_USE
    )
    async def remove_execution(id: PathId, version: VersionParam, ctx: TradeDep) -> Response:
        """204; 404 unknown id; 409 stale ``version``, in flight or already sent."""
        await delete_execution(ctx.store, id, version)
        return Response(status_code=204)

    @router.put(
        "/api/v1/executions/{id}/fill",
        tags=["executions"],
        response_model=ExecutionResponse,
        responses={409: {"description": "Version mismatch"}},
    )
    async def fill(id: PathId, body: FillRequest, ctx: TradeDep) -> Response:
        """A fill reported by the execution service. 409 on a stale version."""
        return rendered(execution_response(await apply_fill(ctx.store, id, body)))

    @router.post(
        "/api/v1/execution/{id}/submit",
        tags=["submission"],
        response_model=ExecutionResponse,
        responses=SUBMIT_RESPONSES,
    )
    async def submit_execution(id: PathId, ctx: TradeDep) -> Response:
        """Send one NEW execution to the execution service (a batch of one)."""
        return rendered(execution_response(await ctx.submissions.submit_execution(id)))


def _health_routes(router: APIRouter) -> None:
    async def up(ctx: TradeDep) -> dict[str, str]:
        return {"status": "UP"}

    async def ready(ctx: TradeDep) -> JSONResponse:
        try:
            await ctx.store.db.ping()
        except Exception as exc:  # any failure to reach the database means not ready
            return JSONResponse({"status": "DOWN", "error": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "UP"})

    for probe in ("liveness", "startup"):
        router.add_api_route(f"/api/v1/health/{probe}", up, methods=["GET"], tags=["health"])
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    router.add_api_route(
        "/api/v1/health/readiness",
        ready,
        methods=["GET"],
        tags=["health"],
        responses={
            200: {"content": {"application/json": {"schema": status}}},
            503: {
                "description": "DOWN: the database cannot be reached",
                "content": {"application/json": {"schema": status}},
            },
        },
    )


def build_router() -> APIRouter:
    router = APIRouter(route_class=ExactJsonRoute)
    add_lookup_routes(router)
    _trade_order_routes(router)
    _execution_routes(router)
    _health_routes(router)
    return router
