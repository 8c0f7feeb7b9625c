"""HTTP routes of ``/api/v1`` (reference A4): parse, call the service, render.

Bodies are read raw and decoded with exact decimals (see :func:`parse_json`), so
malformed JSON is a 400 naming the body and a quantity keeps every digit. The
service answers with domain results; the status codes (201 / 207 / 400 of a batch,
``Location`` of a create) are chosen here.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from tranche.core.errors import InvalidInput
from tranche.core.http import from_app_state
from tranche.core.idempotency import IdempotencyStore
from tranche.core.openapi import response_header
from tranche.execution.idempotent import (
    REPLAY_HEADER,
    Checkpoint,
    Rendered,
    request_fingerprint,
    run_idempotent,
)
from tranche.execution.schemas import (
    BatchResponseOut,
    ExecutionOut,
    ExecutionPageOut,
    ExecutionPostIn,
    ExecutionPutIn,
    MalformedJson,
    dumps,
    parse_json,
)
from tranche.execution.service import BatchOutcome, BatchStatus, ExecutionService, ListParams

__all__ = ["ExecutionDep", "ExecutionDeps", "batch_response", "build_router", "created_response"]

JSON = "application/json"
#: Reference A7: all created → 201, some → 207, none → 400 (the body says which failed).
BATCH_STATUS_CODES: dict[BatchStatus, int] = {"SUCCESS": 201, "PARTIAL_SUCCESS": 207, "FAILED": 400}
BATCH_SCOPE = "POST /api/v1/executions/batch"
CREATE_SCOPE = "POST /api/v1/executions"


class ExecutionDeps:
    """What the routes need; kept on ``app.state.execution`` by the app factory."""

    def __init__(
        self, service: ExecutionService, idempotency: IdempotencyStore, max_batch_size: int
    ) -> None:
        self.service = service
        self.idempotency = idempotency
        self.max_batch_size = max_batch_size


ExecutionDep = Annotated[ExecutionDeps, Depends(from_app_state("execution", "deps"))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Optional. A retry with the same key and body gets the first answer; "
        "the key is remembered for 24 h.",
    ),
]
ExecutionId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Execution id.")]
_REPLAYED = {
    REPLAY_HEADER: response_header(
        "`true` when this is the stored answer to an earlier request with the same "
        "Idempotency-Key (nothing was written)",
        {"type": "string", "enum": ["true"]},
    )
}
_IN_FLIGHT = {
    "description": "A request with this Idempotency-Key is still running",
    "headers": {"Retry-After": response_header("Seconds to wait", {"type": "integer"})},
}
_KEY_REUSED = {"description": "Idempotency-Key reused with a different body"}


async def _body(request: Request) -> Any:
    try:
        return parse_json(await request.body())
    except MalformedJson as exc:
        raise InvalidInput("body", "malformed JSON", f"Malformed JSON: {exc}") from None


def _fingerprint(scope: str, body: Any, key: str | None) -> str:
    """The body's fingerprint, computed only when there is a key to check it against."""
    return request_fingerprint("POST", scope, body) if key is not None else ""


def _respond(rendered: Rendered) -> Response:
    return Response(rendered.body, rendered.status, rendered.headers, media_type=JSON)


def batch_response(outcome: BatchOutcome) -> Rendered:
    """The BatchExecutionResponseDTO of a batch (reference A7) and its status code."""
    body = {
        "status": outcome.status,
        "message": outcome.message,
        "totalRequested": len(outcome.results),
        "successful": outcome.succeeded,
        "failed": outcome.failed,
        "results": [
            {
                "requestIndex": r.index,
                "status": "SUCCESS" if r.ok else "FAILED",
                "message": r.message,
                "execution": r.execution_json(),
            }
            for r in outcome.results
        ],
    }
    return Rendered(BATCH_STATUS_CODES[outcome.status], dumps(body))


def _location(execution_id: object) -> dict[str, str]:
    return {"Location": f"/api/v1/execution/{execution_id}"}


def created_response(dto: dict[str, Any]) -> Rendered:
    """201 with the ExecutionDTO and where to read it again."""
    return Rendered(201, dumps(dto), _location(dto["id"]))


def created_headers(status: int, body: bytes) -> dict[str, str]:
    """The ``Location`` of a stored 201 create answer, for its replay."""
    if status != 201:
        return {}
    return _location(orjson.loads(body)["id"])


def _post_schema() -> dict[str, Any]:
    return ExecutionPostIn.model_json_schema()


def _batch_items(body: Any, maximum: int) -> list[Any]:
    """The ``executions`` list, or a 400 for a request that is invalid as a whole."""
    if not isinstance(body, dict):
        message = "Request body must be a JSON object with an 'executions' list"
        raise InvalidInput("body", message, message)
    items = body.get("executions")
    problem = None
    if items is None:
        problem = "Executions list cannot be null"
    elif not isinstance(items, list):
        problem = "Executions must be a list"
    elif not items:
        problem = "Executions list cannot be empty"
    elif len(items) > maximum:
        problem = f"Maximum {maximum} executions allowed per batch"
    if problem:
        raise InvalidInput("executions", problem)
    return items  # type: ignore[return-value]


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["executions"])

    @router.get(
        "/executions",
        summary="List executions (paged, filtered, sorted)",
        response_model=ExecutionPageOut,
        responses={
            400: {"description": "Bad parameter (named in validationErrors)"},
            503: {
                "description": "The database is unavailable, or a ticker filter needs the "
                "security service and it is down (Retry-After says when to retry)"
            },
        },
    )
    async def list_executions(
        deps: ExecutionDep,
        offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        executionStatus: Annotated[str | None, Query(max_length=500)] = None,
        tradeType: Annotated[str | None, Query(max_length=500)] = None,
        destination: Annotated[str | None, Query(max_length=500)] = None,
        ticker: Annotated[str | None, Query(max_length=500)] = None,
        sortBy: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        """Filters match exactly, ignoring case; each takes a comma-separated list of
        values (any of them matches). ``ticker`` is resolved to a security id by the
        security service. ``sortBy`` is a comma list of id, executionStatus, tradeType,
        destination, ticker (by security id), quantity, receivedTimestamp, sentTimestamp;
        ``-`` before a name sorts descending; default ``id``; nulls sort last."""
        params = ListParams(offset, limit, executionStatus, tradeType, destination, ticker, sortBy)
        return Response(dumps(await deps.service.page(params)), media_type=JSON)

    @router.get(
        "/execution/{execution_id}",
        summary="One execution",
        response_model=ExecutionOut,
        responses={404: {"description": "No such execution"}},
    )
    async def get_execution(deps: ExecutionDep, execution_id: ExecutionId) -> Response:
        return Response(dumps(await deps.service.get(execution_id)), media_type=JSON)

    @router.post(
        "/executions",
        summary="Create one execution",
        status_code=201,
        response_model=ExecutionOut,
        responses={
            201: {
                "headers": {
                    "Location": response_header(
                        "The created execution: /api/v1/execution/{id}", required=True
                    ),
                    **_REPLAYED,
                }
            },
            400: {"description": "Invalid execution (the field is named)"},
            409: _IN_FLIGHT,
            422: _KEY_REUSED,
        },
        openapi_extra={
            "requestBody": {"required": True, "content": {JSON: {"schema": _post_schema()}}}
        },
    )
    async def create_execution(
        deps: ExecutionDep, request: Request, idempotency_key: IdempotencyKey = None
    ) -> Response:
        body = await _body(request)

        async def work(resume: dict[str, Any] | None, checkpoint: Checkpoint | None) -> Rendered:
            return created_response(await deps.service.create_one(body, resume, checkpoint))

        rendered = await run_idempotent(
            deps.idempotency,
            deps.service.metrics,
            scope=CREATE_SCOPE,
            key=idempotency_key,
            request_fp=_fingerprint(CREATE_SCOPE, body, idempotency_key),
            work=work,
            headers_of=created_headers,
        )
        return _respond(rendered)

    @router.post(
        "/executions/batch",
        summary="Create up to EXECUTION_MAX_BATCH_SIZE executions",
        status_code=201,
        response_model=BatchResponseOut,
        responses={
            201: {"headers": _REPLAYED},
            207: {
                "model": BatchResponseOut,
                "description": "Some executions failed",
                "headers": _REPLAYED,
            },
            400: {
                "description": "All failed (BatchExecutionResponseDTO), or the request is "
                "invalid as a whole (error body)",
                "headers": _REPLAYED,
                "content": {
                    JSON: {
                        "schema": {
                            "anyOf": [
                                {"$ref": "#/components/schemas/BatchResponseOut"},
                                {"$ref": "#/components/schemas/ErrorResponse"},
                            ]
                        }
                    }
                },
            },
            409: _IN_FLIGHT,
            422: _KEY_REUSED,
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["executions"],
                            "properties": {
                                "executions": {"type": "array", "items": _post_schema()}
                            },
                        }
                    }
                },
            }
        },
    )
    async def create_batch(
        deps: ExecutionDep, request: Request, idempotency_key: IdempotencyKey = None
    ) -> Response:
        """201 when every execution was created, 207 when some were, 400 when none was.
        Results are in request order; each failure carries its reason."""
        body = await _body(request)
        items = _batch_items(body, deps.max_batch_size)

        async def work(resume: dict[str, Any] | None, checkpoint: Checkpoint | None) -> Rendered:
            return batch_response(await deps.service.create_batch(items, resume, checkpoint))

        rendered = await run_idempotent(
            deps.idempotency,
            deps.service.metrics,
            scope=BATCH_SCOPE,
            key=idempotency_key,
            request_fp=_fingerprint(BATCH_SCOPE, body, idempotency_key),
            work=work,
        )
        return _respond(rendered)

    @router.put(
        "/execution/{execution_id}",
        summary="Record a fill (cumulative quantity, average price)",
        response_model=ExecutionOut,
        responses={
            400: {"description": "Invalid fill (the field is named)"},
            404: {"description": "No such execution"},
            409: {"description": "Stale version; the body carries currentVersion"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": ExecutionPutIn.model_json_schema()}},
            }
        },
    )
    async def put_fill(deps: ExecutionDep, request: Request, execution_id: ExecutionId) -> Response:
        """Sets quantityFilled and averagePrice, status PART (below the quantity) or FULL,
        version + 1; the fill is then reported to the trade service in the background."""
        body = await _body(request)
        return Response(dumps(await deps.service.fill(execution_id, body)), media_type=JSON)

    return router
