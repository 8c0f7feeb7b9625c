"""One INFO line per HTTP request, and the one place an unexpected error is logged.

``http_request`` carries method, path, status, duration and the request id (bound by
:class:`~tranche.core.http.RequestIdMiddleware`, which wraps this middleware). An
exception no handler turned into an answer is logged here once, with its traceback,
and answered with the uniform 500 body; it is *not* re-raised. Starlette's own
``Exception`` handler re-raises after answering so that the server logs it, which
made every 500 appear twice (our line and uvicorn's "Exception in ASGI application").
uvicorn's access log stays off: it has no request id and no duration.
"""

from __future__ import annotations

import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tranche.core.errors import error_body
from tranche.core.logging import get_logger

__all__ = ["UNEXPECTED_MESSAGE", "AccessLogMiddleware"]

log = get_logger("tranche.access")
UNEXPECTED_MESSAGE = "An unexpected error occurred while processing your request"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def capture(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            log.exception("unhandled_error", path=scope["path"], error_type=type(exc).__name__)
            if not started:
                body = error_body(500, UNEXPECTED_MESSAGE, scope["path"])
                await JSONResponse(body, status_code=500)(scope, receive, capture)
        finally:
            log.info(
                "http_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                request_id=scope.get("state", {}).get("request_id"),
            )
