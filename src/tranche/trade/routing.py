"""What every trade route module shares: exact-decimal bodies, parameter types, the
route context and the documented conflicts.

Numbers are exact both ways: :class:`ExactJsonRoute` decodes bodies with decimals
and :func:`rendered` writes responses with the exact encoder (FastAPI's own
response path would turn every decimal into a float).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from tranche.core.errors import NotFound
from tranche.core.exactjson import dumps, parse_json
from tranche.core.http import from_app_state
from tranche.trade.repository import TradeStore
from tranche.trade.service import SubmissionService

__all__ = [
    "INT32",
    "JSON",
    "STALE_OR_IN_USE",
    "STALE_VERSION",
    "ExactJsonRoute",
    "Limit",
    "NoExecute",
    "Offset",
    "PathId",
    "TradeContext",
    "TradeDep",
    "VersionParam",
    "not_found",
    "rendered",
]

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


STALE_VERSION: dict[int | str, dict[str, Any]] = {
    409: {"description": "The body's version is not the stored one"}
}
STALE_OR_IN_USE: dict[int | str, dict[str, Any]] = {
    409: {"description": "Stale version, or the row is still referenced or in flight"}
}


def not_found(what: str, id_: int) -> NotFound:
    return NotFound(f"{what} not found: {id_}")
