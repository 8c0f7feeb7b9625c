from __future__ import annotations

from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest
import structlog
from fastapi import APIRouter
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field

from tranche.core.errors import (
    ApiError,
    Conflict,
    DependencyFailed,
    DependencyUnavailable,
    DomainError,
    InvalidInput,
    NotFound,
    Refused,
    VersionConflict,
)
from tranche.core.health import Health
from tranche.core.http import AppParts, create_app

RID = {"X-Request-ID": "trace-1"}


class Item(BaseModel):
    name: str = Field(max_length=5)
    quantity: int = Field(gt=0)


def build(health: Health | None = None) -> Any:
    router = APIRouter()

    @router.post("/items")
    async def create(item: Item) -> Item:
        return item

    @router.get("/conflict")
    async def conflict() -> None:
        raise ApiError(409, "stale version", extra={"currentVersion": 3})

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 leaked?")

    h = health or Health()

    async def info() -> dict[str, Any]:
        return {"jobs": ["a"]}

    parts = AppParts(
        "svc", "1.0", CollectorRegistry(), h, [router], info=[info], max_body_bytes=2048
    )
    return create_app(parts)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def test_validation_error_names_each_field(client: httpx.AsyncClient) -> None:
    r = await client.post("/items", json={"name": "toolong", "quantity": 0})
    body = r.json()
    assert r.status_code == 400
    assert set(body) >= {"timestamp", "status", "error", "message", "path", "validationErrors"}
    assert body["path"] == "/items"
    assert set(body["validationErrors"]) == {"name", "quantity"}
    assert "quantity" in body["message"]


async def test_malformed_json_is_400_not_500(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/items", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "Malformed JSON" in r.json()["message"]


async def test_api_error_keeps_status_and_extra_fields(client: httpx.AsyncClient) -> None:
    r = await client.get("/conflict")
    assert r.status_code == 409
    assert r.json()["currentVersion"] == 3
    assert r.json()["error"] == "Conflict"


async def test_unexpected_error_is_json_and_leaks_nothing(client: httpx.AsyncClient) -> None:
    r = await client.get("/boom")
    assert r.status_code == 500
    assert "hunter2" not in r.text
    assert r.json()["message"] == "An unexpected error occurred while processing your request"


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/nope")
    assert r.status_code == 404
    assert r.json()["path"] == "/nope"


async def test_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/items", content=b"x" * 4096, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 512

    r = await client.post("/items", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/actuator/health", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/actuator/health")
    assert len(r.headers["x-request-id"]) == 32


async def test_health_groups_and_down_component() -> None:
    health = Health()

    async def ok() -> dict[str, Any]:
        return {"database": "sqlite"}

    async def down() -> None:
        raise ConnectionError("broker unreachable")

    health.add("db", ok, groups=("readiness",))
    health.add("kafka", down, groups=("readiness",))
    health.add("ping", ok, groups=("liveness",))
    transport = httpx.ASGITransport(app=build(health))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        live = await c.get("/actuator/health/liveness")
        ready = await c.get("/actuator/health/readiness")
        overall = await c.get("/actuator/health")
        unknown = await c.get("/actuator/health/bogus")
    assert live.status_code == 200 and live.json()["status"] == "UP"
    assert ready.status_code == 503
    assert ready.json()["components"]["kafka"]["status"] == "DOWN"
    assert "broker unreachable" in ready.json()["components"]["kafka"]["details"]["error"]
    assert overall.json()["status"] == "DOWN"
    assert unknown.status_code == 404


async def test_info_prometheus_and_openapi(client: httpx.AsyncClient) -> None:
    await client.post("/items", json={"name": "a", "quantity": 1})
    info = (await client.get("/actuator/info")).json()
    assert info == {"app": {"name": "svc", "version": "1.0"}, "jobs": ["a"]}
    prom = await client.get("/actuator/prometheus")
    assert (
        'http_server_requests_seconds_count{method="POST",status="200",uri="/items"} 1.0'
        in prom.text
    )
    assert (await client.get("/metrics")).text.count("http_server_requests_total") >= 1
    assert (await client.get("/docs")).status_code == 200
    assert "/items" in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.parametrize(
    ("error", "status", "fields", "extra", "retry_after"),
    [
        (NotFound("Execution 7 not found"), 404, None, {}, None),
        (
            InvalidInput("quantity", "must be positive"),
            400,
            {"quantity": "must be positive"},
            {},
            None,
        ),
        (Refused("Client error: refused"), 400, None, {}, None),
        (
            Conflict("already running", details={"executionId": 4}),
            409,
            None,
            {"executionId": 4},
            None,
        ),
        (VersionConflict("stale", current_version=3), 409, None, {"currentVersion": 3}, None),
        (DependencyUnavailable("security service down", retry_after_s=10), 503, None, {}, "10"),
        (DependencyFailed("Execution service unavailable: x"), 502, None, {}, None),
    ],
)
async def test_domain_errors_map_to_their_status_once_at_the_edge(
    error: DomainError,
    status: int,
    fields: dict[str, str] | None,
    extra: dict[str, Any],
    retry_after: str | None,
) -> None:
    router = APIRouter()

    @router.get("/refuse")
    async def refuse() -> None:
        raise error

    members = [lambda e: {"error": e.message}, None]
    for member in members:
        parts = AppParts(
            "svc", "1.0", CollectorRegistry(), Health(), [router], error_members=member
        )
        transport = httpx.ASGITransport(app=create_app(parts), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/refuse")
        body = r.json()
        assert r.status_code == status
        assert (body["status"], body["message"], body["path"]) == (status, error.message, "/refuse")
        assert body["validationErrors"] == fields
        assert {k: body[k] for k in extra} == extra
        assert r.headers.get("Retry-After") == retry_after
        assert body["error"] == (error.message if member else HTTPStatus(status).phrase)


async def test_every_request_has_one_access_log_line() -> None:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        with structlog.testing.capture_logs() as logs:
            r = await c.post("/items", json={"name": "ab", "quantity": 1}, headers=RID)
            missing = await c.get("/nope")
    assert (r.status_code, missing.status_code) == (200, 404)
    lines = [e for e in logs if e["event"] == "http_request"]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", "/items", 200),
        ("GET", "/nope", 404),
    ]
    assert all(e["log_level"] == "info" for e in lines)
    assert lines[0]["request_id"] == "trace-1"
    assert lines[1]["request_id"] == missing.headers["x-request-id"]
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in lines)


async def test_a_500_is_answered_and_logged_once_not_raised_to_the_server() -> None:
    # raise_app_exceptions (the default): an exception reaching the server fails the call,
    # as it makes uvicorn log "Exception in ASGI application" a second time.
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        with structlog.testing.capture_logs() as logs:
            r = await c.get("/boom", headers=RID)
    assert r.status_code == 500
    assert r.json()["message"] == "An unexpected error occurred while processing your request"
    assert r.headers["x-request-id"] == "trace-1"
    errors = [e for e in logs if e["log_level"] in ("error", "critical")]
    assert [e["event"] for e in errors] == ["unhandled_error"]
    assert errors[0]["error_type"] == "RuntimeError"
    (access,) = [e for e in logs if e["event"] == "http_request"]
    assert (access["status"], access["path"]) == (500, "/boom")
