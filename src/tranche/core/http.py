"""FastAPI app factory shared by the three services.

Adds what every service needs and nothing domain-specific: lifespan management,
request ids, the uniform error body, a request body size limit, OpenAPI at
``/docs`` and the Spring Boot actuator paths the originals' deployments probe
(``/actuator/health[/liveness|/readiness]``, ``/actuator/info``,
``/actuator/prometheus`` and ``/metrics``).

It is also the one place where errors become HTTP answers: each
:class:`~tranche.core.errors.DomainError` kind has its status here
(:data:`DOMAIN_STATUS`), a database that cannot be reached answers 503 with
``Retry-After`` (never the URL or the driver's text), request validation 400
naming each field, and anything unexpected a bare 500 (answered and logged once by
:class:`~tranche.core.access_log.AccessLogMiddleware`, which also writes the access log).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tranche.core.access_log import AccessLogMiddleware
from tranche.core.errors import (
    ApiError,
    Conflict,
    DependencyFailed,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
    Refused,
    error_body,
    field_path,
)
from tranche.core.health import Health
from tranche.core.logging import get_logger
from tranche.core.openapi import install_openapi

__all__ = [
    "DATABASE_UNAVAILABLE",
    "DOMAIN_STATUS",
    "AppParts",
    "BodySizeLimitMiddleware",
    "ErrorMembers",
    "RequestIdMiddleware",
    "actuator_router",
    "create_app",
    "from_app_state",
    "install_error_handlers",
]

log = get_logger(__name__)

InfoProvider = Callable[[], Awaitable[dict[str, Any]]]
#: Extra members a service adds to every domain-error body (the trade original's ``error``).
ErrorMembers = Callable[[DomainError], Mapping[str, Any]]

#: The status of each domain error kind (the first match along the exception's MRO).
DOMAIN_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    InvalidInput: 400,
    Refused: 400,
    Conflict: 409,
    DependencyFailed: 502,
    DependencyUnavailable: 503,
}
#: Errors meaning the database cannot be reached (down, connection lost, pool exhausted).
#: asyncpg lets a refused connection through as the builtin ``ConnectionRefusedError``
#: (SQLAlchemy wraps only DBAPI errors); every other client the services use (httpx,
#: redis, aiokafka) raises its own types, so here it can only be the database.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    ConnectionRefusedError,
)
DATABASE_RETRY_AFTER_S = 5
JSON_MEDIA = "application/json"


@dataclass
class AppParts:
    """What a service hands to :func:`create_app`."""

    name: str
    version: str
    registry: CollectorRegistry
    health: Health
    routers: Sequence[APIRouter] = ()
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None
    info: list[InfoProvider] = field(default_factory=list)
    max_body_bytes: int = 10 * 1024 * 1024
    description: str = ""
    openapi_tags: list[dict[str, Any]] | None = None
    error_members: ErrorMembers | None = None


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = error_body(413, f"Request body exceeds {self.max_bytes} bytes", scope["path"])
        await JSONResponse(body, status_code=413)(scope, self._noop_receive, send)

    @staticmethod
    async def _noop_receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, send)
            return
        seen = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer now; whatever the app does with the cut-off body is discarded.
                    rejected = True
                    await self._reject(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        with contextlib.suppress(ClientDisconnect):
            await self.app(scope, limited_receive, guarded_send)


class _HttpMetricsMiddleware:
    """``http_server_requests_seconds`` by method, route template and status (Spring's name)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.duration = Histogram(
            "http_server_requests_seconds",
            "HTTP request duration",
            ["method", "uri", "status"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.total = Counter(
            "http_server_requests", "HTTP requests", ["method", "uri", "status"], registry=registry
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            uri = getattr(route, "path", None) or "UNKNOWN"
            labels = (scope["method"], uri, str(status))
            self.duration.labels(*labels).observe(time.perf_counter() - start)
            self.total.labels(*labels).inc()


class RequestIdMiddleware:
    """Binds ``request_id`` for the request's log lines and returns it as ``X-Request-ID``.

    The id comes from ``X-Request-ID`` when the caller sends one (so a trace spans
    services) and is generated otherwise.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming[:128] if incoming else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _domain_status(exc: DomainError) -> int:
    for kind in type(exc).__mro__:
        status = DOMAIN_STATUS.get(kind)
        if status is not None:
            return status
    return 400


def _on_domain_error(members: ErrorMembers | None) -> Callable[..., Awaitable[JSONResponse]]:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        status = _domain_status(exc)
        extra = {**exc.details, **(members(exc) if members else {})}
        body = error_body(status, exc.message, request.url.path, exc.fields, extra)
        headers = None
        if isinstance(exc, DependencyUnavailable) and exc.retry_after_s is not None:
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(body, status_code=status, headers=headers)

    return handle


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The type only: the driver's text can carry the host, the user or the URL.
    log.error("database_unavailable", path=request.url.path, error=type(exc).__name__)
    body = error_body(503, "The database is unavailable; retry later", request.url.path)
    headers = {"Retry-After": str(DATABASE_RETRY_AFTER_S)}
    return JSONResponse(body, status_code=503, headers=headers)


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = error_body(exc.status, exc.message, request.url.path, exc.validation_errors, exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


def _validation_message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        return f"Malformed JSON: {err.get('ctx', {}).get('error', 'cannot be parsed')}"
    if err.get("type") == "missing":
        return "is required"
    return str(err.get("msg", "is invalid"))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields: dict[str, str] = {}
    for err in exc.errors():
        fields.setdefault(field_path(tuple(err.get("loc", ()))), _validation_message(err))
    summary = "; ".join(f"{k} {v}" for k, v in fields.items())
    body = error_body(400, f"Validation failed: {summary}", request.url.path, fields)
    return JSONResponse(body, status_code=400)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    body = error_body(exc.status_code, str(exc.detail), request.url.path)
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI, members: ErrorMembers | None = None) -> None:
    """Every error answer of a service app; ``members`` adds to domain-error bodies.

    Unexpected exceptions are not among them: :class:`AccessLogMiddleware` answers those
    (a handler for ``Exception`` would re-raise to the server, which logs it again).
    """
    app.add_exception_handler(DomainError, _on_domain_error(members))
    for exc_type in DATABASE_UNAVAILABLE:
        app.add_exception_handler(exc_type, _on_database_unavailable)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)


def from_app_state(*names: str) -> Callable[[Request], Any]:
    """A route dependency reading ``request.app.state.<names...>``: what the app factory
    or its lifespan put there. Each router declares its ``Annotated`` aliases once, e.g.
    ``RuntimeDep = Annotated[Runtime, Depends(from_app_state("runtime"))]``."""

    def read(request: Request) -> Any:
        value: Any = request.app.state
        for name in names:
            value = getattr(value, name)
        return value

    read.__name__ = "app_state_" + "_".join(names)
    return read


def actuator_router(parts: AppParts) -> APIRouter:
    router = APIRouter(tags=["actuator"])

    async def _health(group: str | None, request: Request) -> JSONResponse:
        body = await parts.health.report(group, request)
        return JSONResponse(body, status_code=200 if body["status"] == "UP" else 503)

    health_body = {JSON_MEDIA: {"schema": {"type": "object"}}}
    down: dict[int | str, dict[str, Any]] = {
        503: {"description": "DOWN: a component is unhealthy (same body)", "content": health_body}
    }

    @router.get("/actuator/health", summary="Overall health (Spring Boot format)", responses=down)
    async def health(request: Request) -> JSONResponse:
        return await _health(None, request)

    @router.get(
        "/actuator/health/{group}",
        summary="Health of one group or component",
        responses={**down, 404: {"description": "No such group"}},
    )
    async def health_group(group: str, request: Request) -> JSONResponse:
        if group not in parts.health.groups:
            body = error_body(404, f"Unknown health group '{group}'", request.url.path)
            return JSONResponse(body, status_code=404)
        return await _health(group, request)

    @router.get("/actuator/info", summary="Build and runtime information")
    async def info() -> dict[str, Any]:
        out: dict[str, Any] = {"app": {"name": parts.name, "version": parts.version}}
        for provider in parts.info:
            out.update(await provider())
        return out

    def _prometheus() -> Response:
        return Response(generate_latest(parts.registry), media_type=CONTENT_TYPE_LATEST)

    router.add_api_route(
        "/actuator/prometheus",
        _prometheus,
        methods=["GET"],
        summary="Metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    router.add_api_route("/metrics", _prometheus, methods=["GET"], include_in_schema=False)
    return router


def create_app(parts: AppParts) -> FastAPI:
    """Build the FastAPI app; ``parts.lifespan`` starts and stops the service's resources."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if parts.lifespan is None:
            yield
            return
        async with parts.lifespan(app):
            yield

    app = FastAPI(
        title=parts.name,
        version=parts.version,
        description=parts.description,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_tags=parts.openapi_tags,
    )
    install_openapi(app)
    install_error_handlers(app, parts.error_members)
    for router in parts.routers:
        app.include_router(router)
    app.include_router(actuator_router(parts))
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=parts.max_body_bytes)
    app.add_middleware(_HttpMetricsMiddleware, registry=parts.registry)
    app.add_middleware(AccessLogMiddleware)  # inside RequestIdMiddleware: has the id
    app.add_middleware(RequestIdMiddleware)
    return app
