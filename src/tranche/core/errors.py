"""One JSON error body for every service, in the shape the Spring originals used.

``{"timestamp", "status", "error", "message", "path", "validationErrors"}`` —
``validationErrors`` maps each bad field (dotted path) to what is wrong with it.
Unlike the originals, ``path`` is the plain request path (they sent
``uri=/api/...``, a Spring ``WebRequest`` quirk) and malformed JSON or bad
parameter types are 400, not 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tranche.core.clock import utc_now
from tranche.core.logging import get_logger

__all__ = ["ApiError", "error_body", "field_path", "install_error_handlers"]

log = get_logger(__name__)


class ApiError(Exception):
    """Raise from a route to answer ``status`` with the uniform body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        validation_errors: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.validation_errors = dict(validation_errors) if validation_errors else None
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else None


def error_body(
    status: int,
    message: str,
    path: str,
    validation_errors: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body: dict[str, Any] = {
        "timestamp": utc_now().isoformat(),
        "status": status,
        "error": reason,
        "message": message,
        "path": path,
        "validationErrors": dict(validation_errors) if validation_errors else None,
    }
    if extra:
        body.update(extra)
    return body


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "executions", 3, "quantity")`` → ``executions[3].quantity``."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        return f"Malformed JSON: {err.get('ctx', {}).get('error', 'cannot be parsed')}"
    if err.get("type") == "missing":
        return "is required"
    return str(err.get("msg", "is invalid"))


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    body = error_body(exc.status, exc.message, request.url.path, exc.validation_errors, exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


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


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, error_type=type(exc).__name__)
    body = error_body(
        500, "An unexpected error occurred while processing your request", request.url.path
    )
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)
