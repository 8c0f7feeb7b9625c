"""FastAPI app factory shared by the three services.

Adds what every service needs and nothing domain-specific: lifespan management,
request ids, the uniform error body, a request body size limit, OpenAPI at
``/docs`` and the Spring Boot actuator paths the originals' deployments probe
(``/actuator/health[/liveness|/readiness]``, ``/actuator/info``,
``/actuator/prometheus`` and ``/metrics``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tranche.core.errors import error_body, install_error_handlers
from tranche.core.health import Health
from tranche.core.logging import RequestIdMiddleware

__all__ = ["AppParts", "BodySizeLimitMiddleware", "actuator_router", "create_app"]

InfoProvider = Callable[[], Awaitable[dict[str, Any]]]


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


def actuator_router(parts: AppParts) -> APIRouter:
    router = APIRouter(tags=["actuator"])

    async def _health(group: str | None, request: Request) -> JSONResponse:
        body = await parts.health.report(group, request)
        return JSONResponse(body, status_code=200 if body["status"] == "UP" else 503)

    @router.get("/actuator/health", summary="Overall health (Spring Boot format)")
    async def health(request: Request) -> JSONResponse:
        return await _health(None, request)

    @router.get("/actuator/health/{group}", summary="Health of one group or component")
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

    router.add_api_route("/actuator/prometheus", _prometheus, methods=["GET"], summary="Metrics")
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
    install_error_handlers(app)
    for router in parts.routers:
        app.include_router(router)
    app.include_router(actuator_router(parts))
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=parts.max_body_bytes)
    app.add_middleware(_HttpMetricsMiddleware, registry=parts.registry)
    app.add_middleware(RequestIdMiddleware)
    return app
