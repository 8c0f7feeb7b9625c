"""HTTP routes of the trade service, paths and status codes as the original (reference B).

Numbers are exact both ways: :class:`ExactJsonRoute` decodes bodies with decimals
and :func:`rendered` writes responses with the exact encoder (FastAPI's own
response path would turn every decimal into a float).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from tranche.core.errors import NotFound
from tranche.core.exactjson import dumps, parse_json
from tranche.core.http import from_app_state
from tranche.trade.fills import apply_fill
from tranche.trade.lookups import create_lookup, delete_lookup, update_lookup
from tranche.trade.mapping import (
    blotter_response,
    code_response,
    execution_response,
    trade_order_response,
)
from tranche.trade.models import Blotter, Destination, ExecutionStatus, TradeType
from tranche.trade.orders import (
    create_execution,
    create_trade_order,
    delete_execution,
    delete_trade_order,
    update_execution,
    update_trade_order,
)
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
    BlotterUpdate,
    BlotterWrite,
    CodeResponse,
    CodeUpdate,
    CodeWrite,
    ExecutionCreate,
    ExecutionResponse,
    ExecutionUpdate,
    FillRequest,
    TradeOrderCreate,
    TradeOrderResponse,
    TradeOrderSubmit,
    TradeOrderUpdate,
)
from tranche.trade.service import SubmissionService

__all__ = ["ExactJsonRoute", "TradeContext", "TradeDep", "build_router", "rendered"]

JSON = "application/json"


class _ExactJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class ExactJsonRoute(APIRoute):
    """A route whose JSON body is decoded with exact decimals (``1234567890.12345678``
    stays itself instead of becoming the nearest float)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact(request: Request) -> Response:
            return await handler(_ExactJsonRequest(request.scope, request.receive))

        return exact


def rendered(
    body: BaseModel | Sequence[BaseModel],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``body`` as JSON with exact decimals (a Python-mode dump keeps them Decimal)."""
    if isinstance(body, BaseModel):
        content: Any = body.model_dump(by_alias=True)
    else:
        content = [item.model_dump(by_alias=True) for item in body]
    return Response(dumps(content), status_code=status_code, headers=headers, media_type=JSON)


INT32 = 2_147_483_647
PathId = Annotated[int, Path(ge=-INT32 - 1, le=INT32)]
Limit = Annotated[int | None, Query(ge=1, le=1000, description="Page size (1-1000).")]
VersionParam = Annotated[
    int, Query(ge=0, le=INT32, description="The version the delete is made against.")
]
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


#: What a submission can answer besides success (400/404/503 are documented for all).
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "The execution service refused it as a conflict"},
    502: {"description": "The execution service could not be reached or failed"},
}


STALE_VERSION: dict[int | str, dict[str, Any]] = {
    409: {"description": "The body's version is not the stored one"}
}
STALE_OR_IN_USE: dict[int | str, dict[str, Any]] = {
    409: {"description": "Stale version, or the row is still referenced or in flight"}
}
_CONFLICTS = {"GET": None, "PUT": STALE_VERSION, "DELETE": STALE_OR_IN_USE}


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

    @router.post("/api/v1/blotters", status_code=201, tags=["lookups"])
    async def new_blotter(body: BlotterWrite, ctx: TradeDep) -> BlotterResponse:
        return blotter_response(await create_lookup(ctx.store, Blotter, body.model_dump()))

    @router.put("/api/v1/blotters/{id}", tags=["lookups"], responses=STALE_VERSION)
    async def change_blotter(id: PathId, body: BlotterUpdate, ctx: TradeDep) -> BlotterResponse:
        """404 unknown id; 409 stale ``version``."""
        values = body.model_dump(exclude={"version"})
        row = await update_lookup(ctx.store, Blotter, "Blotter", id, values, body.version)
        return blotter_response(row)

    @router.delete(
        "/api/v1/blotters/{id}", status_code=204, tags=["lookups"], responses=STALE_OR_IN_USE
    )
    async def remove_blotter(id: PathId, version: VersionParam, ctx: TradeDep) -> Response:
        """204; 404 unknown id; 409 stale ``version`` or still in use."""
        await delete_lookup(ctx.store, Blotter, "Blotter", id, version)
        return Response(status_code=204)

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

    async def new_code(body: CodeWrite, ctx: TradeDep) -> CodeResponse:
        return code_response(await create_lookup(ctx.store, model, body.model_dump()))

    async def change_code(id: PathId, body: CodeUpdate, ctx: TradeDep) -> CodeResponse:
        """404 unknown id; 409 stale ``version``."""
        values = body.model_dump(exclude={"version"})
        return code_response(await update_lookup(ctx.store, model, label, id, values, body.version))

    async def remove_code(id: PathId, version: VersionParam, ctx: TradeDep) -> Response:
        """204; 404 unknown id; 409 stale ``version`` or still in use."""
        await delete_lookup(ctx.store, model, label, id, version)
        return Response(status_code=204)

    tags: list[str | Enum] = ["lookups"]
    router.add_api_route(f"/api/v1/{plural}", list_codes, methods=["GET"], tags=tags)
    router.add_api_route(
        f"/api/v1/{plural}", new_code, methods=["POST"], status_code=201, tags=tags
    )
    for path in dict.fromkeys((f"/api/v1/{single}/{{id}}", f"/api/v1/{plural}/{{id}}")):
        # The original served trade types at the singular path only; both work here.
        shown = path.startswith(f"/api/v1/{single}/")
        for endpoint, method, code in (
            (one_code, "GET", 200),
            (change_code, "PUT", 200),
            (remove_code, "DELETE", 204),
        ):
            router.add_api_route(
                path,
                endpoint,
                methods=[method],
                status_code=code,
                tags=tags,
                include_in_schema=shown,
                responses=_CONFLICTS[method],
            )


def _trade_order_routes(router: APIRouter) -> None:
    @router.get(
        "/api/v1/tradeOrders", tags=["trade orders"], response_model=list[TradeOrderResponse]
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
            raise _not_found("Trade order", id)
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
    @router.get("/api/v1/executions", tags=["executions"], response_model=list[ExecutionResponse])
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
            raise _not_found("Execution", id)
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
    _lookup_routes(router)
    _trade_order_routes(router)
    _execution_routes(router)
    _health_routes(router)
    return router
