"""Routes of the trade service's lookups (the original's Blotter, TradeType,
ExecutionStatus and Destination controllers): list, get, create, update, delete."""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import APIRouter, Response

from tranche.trade.lookups import create_lookup, delete_lookup, update_lookup
from tranche.trade.mapping import blotter_response, code_response
from tranche.trade.models import Blotter, Destination, ExecutionStatus, TradeType
from tranche.trade.repository import get_lookup, list_lookup
from tranche.trade.routing import (
    STALE_OR_IN_USE,
    STALE_VERSION,
    PathId,
    TradeDep,
    VersionParam,
    not_found,
)
from tranche.trade.schemas import (
    BlotterResponse,
    BlotterUpdate,
    BlotterWrite,
    CodeResponse,
    CodeUpdate,
    CodeWrite,
)

__all__ = ["add_lookup_routes"]

_CONFLICTS = {"GET": None, "PUT": STALE_VERSION, "DELETE": STALE_OR_IN_USE}


def add_lookup_routes(router: APIRouter) -> None:
    @router.get("/api/v1/blotters", tags=["lookups"])
    async def blotters(ctx: TradeDep) -> list[BlotterResponse]:
        async with ctx.store.read() as s:
            return [blotter_response(b) for b in await list_lookup(s, Blotter)]

    @router.get("/api/v1/blotters/{id}", tags=["lookups"])
    async def blotter(id: PathId, ctx: TradeDep) -> BlotterResponse:
        async with ctx.store.read() as s:
            row = await get_lookup(s, Blotter, id)
        if row is None:
            raise not_found("Blotter", id)
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
            raise not_found(label, id)
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
