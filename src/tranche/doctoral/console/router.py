"""Serves the admin console at ``/console`` and relays its sign-in to user-service.

The static files need no token (they hold no data); every API call the page
makes carries the admin's bearer token, checked by the API as usual. Only the
files shipped in ``static/`` are served: a name is looked up in the directory
listing taken at import, so no path can reach outside it.

Sign-in: when ``DOCTORAL_USER_SERVICE_URL`` is set, ``POST /console/login``
forwards the e-mail and password to user-service's ``POST /api/auth/login``
and hands back the access token. Relaying (rather than the browser calling
user-service) keeps the page on one origin, so no CORS set-up is needed; the
password is never logged or stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from tranche.core.errors import ApiError, DependencyFailed, DependencyUnavailable
from tranche.core.logging import get_logger
from tranche.doctoral.runtime import Runtime

__all__ = ["STATIC", "router"]

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
_FILES = {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*") if p.is_file()}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Everything from our origin, nothing inline or from elsewhere.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
LOGIN_TIMEOUT_S = 10.0

router = APIRouter(prefix="/console", include_in_schema=False)


class LoginRequest(BaseModel):
    email: str = Field(min_length=3, max_length=255)
    password: str = Field(min_length=1, max_length=500)


def _file(name: str) -> FileResponse:
    path = _FILES.get(name)
    if path is None:
        raise ApiError(404, f"No console file named {name}")
    media = _TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers=_HEADERS)


@router.get("")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/")
async def console_index() -> FileResponse:
    return _file("index.html")


@router.get("/config.json")
async def console_config(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    configured = runtime.settings.user_service_url is not None
    return JSONResponse({"passwordLogin": configured}, headers={"Cache-Control": "no-store"})


@router.post("/login")
async def console_login(request: Request, body: LoginRequest) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    base = runtime.settings.user_service_url
    if base is None:
        raise ApiError(404, "Sign-in is not configured (DOCTORAL_USER_SERVICE_URL); paste a token")
    url = base.rstrip("/") + "/api/auth/login"
    try:
        async with httpx.AsyncClient(timeout=LOGIN_TIMEOUT_S) as client:
            answer = await client.post(url, json=body.model_dump())
    except httpx.HTTPError as exc:
        log.warning("console_login_unreachable", error=type(exc).__name__)
        raise DependencyUnavailable("user-service cannot be reached; retry later") from None
    if answer.status_code in (400, 401, 403):
        raise ApiError(401, "Sign-in refused: wrong e-mail or password")
    if answer.status_code >= 300:
        log.warning("console_login_failed", status=answer.status_code)
        raise DependencyFailed(f"user-service answered {answer.status_code}")
    token = _token_of(answer)
    if token is None:
        raise DependencyFailed("user-service's answer holds no access token")
    return JSONResponse({"token": token}, headers={"Cache-Control": "no-store"})


def _token_of(answer: httpx.Response) -> str | None:
    try:
        data: Any = answer.json()
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("accessToken", "access_token", "token"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@router.get("/{name:path}")
async def console_file(name: str) -> FileResponse:
    return _file(name)
