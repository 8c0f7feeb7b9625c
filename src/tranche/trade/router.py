"""HTTP routes of the trade service, paths and status codes as the original (reference B)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse

from tranche.core.errors import NotFound
from tranche.core.http import from_app_state
from tranche.trade.fills import apply_fill
from tranche.trade.mapping import (
    blotter_response,
    code_response,
    execution_response,
    trade_order_response,
)
from tranche.trade.models import Blotter, Destination, ExecutionStatus, TradeType
from tranche.trade.orders import create_execution, create_trade_order
from tranche.trade.repository import (
    TradeStore,
    get_execution,
    get_lookup,
    get_trade_order,
    list_executions,
    list_lookup,
    list_trade_orders,
)
from tranche.trade.schemas import (
    BatchSubmitRequest,
    BatchSubmitResponse,
    BlotterResponse,
    CodeResponse,
    ExecutionCreate,
    ExecutionResponse,
    FillRequest,
    TradeOrderCreate,
    TradeOrderResponse,
    TradeOrderSubmit,
)
from tranche.trade.service import SubmissionService

__all__ = ["TradeContext", "TradeDep", "build_router"]

INT32 = 2_147_483_647
PathId = Annotated[int, Path(ge=-INT32 - 1, le=INT32)]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Page size (1-1000).")]
Offset = Annotated[int | None, Query(ge=0, le=INT32, description="Rows to skip.")]
NoExecute = Annotated[
    bool,
    Query(
        alias="noExecuteSubmit",
        description="true: create the execution(s) without sending them to the execution service.",
    ),
]


@dataclass
class TradeContext:
    """What the routes need, built by the app's lifespan."""

    store: TradeStore
    submissions: SubmissionService


TradeDep = Annotated[TradeContext, Depends(from_app_state("trade"))]


def _not_found(what: str, id_: int) -> NotFound:
    return NotFound(f"{what} not found: {id_}")


def _lookup_routes(router: APIRouter) -> None:
    @router.get("/api/v1/blotters", tags=["lookups"])
    async def blotters(ctx: TradeDep) -> list[BlotterResponse]:
        async with ctx.store.read() as s:
            return [blotter_response(b) for b in await list_lookup(s, Blotter)]

    @router.get("/api/v1/blotters/{id}", tags=["lookups"])
    async def blotter(id: PathId, ctx: TradeDep) -> BlotterResponse:
        async with ctx.store.read() as s:
            row = await get_lookup(s, Blotter, id)
        if row is None:
            raise _not_found("Blotter", id)
        return blotter_response(row)

    codes: list[tuple[str, str, type[Any], str]] = [
        ("tradeTypes", "tradeType", TradeType, "Trade type"),
        ("executionStatuses", "executionStatuses", ExecutionStatus, "Execution status"),
        ("destinations", "destinations", Destination, "Destination"),
    ]
    for plural, single, model, label in codes:
        _code_routes(router, plural, single, model, label)


def _code_routes(router: APIRouter, plural: str, single: str, model: type[Any], label: str) -> None:
    async def list_codes(ctx: TradeDep) -> list[CodeResponse]:
        async with ctx.store.read() as s:
            return [code_response(r) for r in await list_lookup(s, model)]

    async def one_code(id: PathId, ctx: TradeDep) -> CodeResponse:
        async with ctx.store.read() as s:
            row = await get_lookup(s, model, id)
        if row is None:
            raise _not_found(label, id)
        return code_response(row)

    router.add_api_route(f"/api/v1/{plural}", list_codes, methods=["GET"], tags=["lookups"])
    router.add_api_route(f"/api/v1/{single}/{{id}}", one_code, methods=["GET"], tags=["lookups"])
    if single != plural:
        # The original served trade types at the singular path only; both work here.
        router.add_api_route(
            f"/api/v1/{plural}/{{id}}", one_code, methods=["GET"], include_in_schema=False
        )


def _trade_order_routes(router: APIRouter) -> None:
    @router.get("/api/v1/tradeOrders", tags=["trade orders"])
    async def trade_orders(
        ctx: TradeDep,
        response: Response,
        limit: Limit = None,
        offset: Offset = None,
        order_id: Annotated[int | None, Query(ge=-INT32 - 1, le=INT32)] = None,
    ) -> list[TradeOrderResponse]:
        async with ctx.store.read() as s:
            rows, total = await list_trade_orders(s, limit, offset or 0, order_id)
        if limit is not None or offset is not None or order_id is not None:
            response.headers["X-Total-Count"] = str(total)
        return [trade_order_response(o) for o in rows]

    @router.post("/api/v1/tradeOrders", status_code=201, tags=["trade orders"])
    async def new_trade_order(body: TradeOrderCreate, ctx: TradeDep) -> TradeOrderResponse:
        return trade_order_response(await create_trade_order(ctx.store, body))

    @router.post("/api/v1/tradeOrders/batch/submit", tags=["submission"])
    async def batch_submit(
        body: BatchSubmitRequest, ctx: TradeDep, response: Response, no_execute: NoExecute = False
    ) -> BatchSubmitResponse:
        """1-100 submissions. 200 SUCCESS, 207 PARTIAL, 200 FAILURE; 400 if invalid."""
        result = await ctx.submissions.submit_batch(body, no_execute)
        response.status_code = 207 if result.status == "PARTIAL" else 200
        return result

    @router.get("/api/v1/tradeOrders/{id}", tags=["trade orders"])
    async def trade_order(id: PathId, ctx: TradeDep) -> TradeOrderResponse:
        async with ctx.store.read() as s:
            row = await get_trade_order(s, id)
        if row is None:
            raise _not_found("Trade order", id)
        return trade_order_response(row)

    @router.post("/api/v1/tradeOrders/{id}/submit", status_code=201, tags=["submission"])
    async def submit_trade_order(
        id: PathId, body: TradeOrderSubmit, ctx: TradeDep, no_execute: NoExecute = False
    ) -> ExecutionResponse:
        execution = await ctx.submissions.submit_trade_order(id, body, no_execute)
        return execution_response(execution)


def _execution_routes(router: APIRouter) -> None:
    @router.get("/api/v1/executions", tags=["executions"])
    async def executions(
        ctx: TradeDep, response: Response, limit: Limit = None, offset: Offset = None
    ) -> list[ExecutionResponse]:
        async with ctx.store.read() as s:
            rows, total = await list_executions(s, limit, offset or 0)
        if limit is not None or offset is not None:
            response.headers["X-Total-Count"] = str(total)
        return [execution_response(e) for e in rows]

    @router.post("/api/v1/executions", status_code=201, tags=["executions"])
    async def new_execution(body: ExecutionCreate, ctx: TradeDep) -> ExecutionResponse:
        return execution_response(await create_execution(ctx.store, body))

    @router.get("/api/v1/executions/{id}", tags=["executions"])
    async def execution(id: PathId, ctx: TradeDep) -> ExecutionResponse:
        async with ctx.store.read() as s:
            row = await get_execution(s, id)
        if row is None:
            raise _not_found("Execution", id)
        return execution_response(row)

    @router.put("/api/v1/executions/{id}/fill", tags=["executions"])
    async def fill(id: PathId, body: FillRequest, ctx: TradeDep) -> ExecutionResponse:
        """A fill reported by the execution service. 409 on a stale version."""
        return execution_response(await apply_fill(ctx.store, id, body))

    @router.post("/api/v1/execution/{id}/submit", tags=["submission"])
    async def submit_execution(id: PathId, ctx: TradeDep) -> ExecutionResponse:
        """Send one NEW execution to the execution service (a batch of one)."""
        return execution_response(await ctx.submissions.submit_execution(id))


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
    router.add_api_route("/api/v1/health/readiness", ready, methods=["GET"], tags=["health"])


def build_router() -> APIRouter:
    router = APIRouter()
    _lookup_routes(router)
    _trade_order_routes(router)
    _execution_routes(router)
    _health_routes(router)
    return router
