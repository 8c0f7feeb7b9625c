"""With DOCTORAL_EUREKA_URL set, the service registers as BATCH-SERVICE (and leaves on shutdown)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from tests.doctoral.harness import Databases
from tests.fixtures.waiting import eventually
from tranche.batch import BatchSettings
from tranche.core.broker import free_port
from tranche.core.settings import KafkaSettings
from tranche.doctoral.app import create_app


@pytest.fixture
async def eureka() -> AsyncIterator[tuple[str, list[tuple[str, str, str, Any]]]]:
    """A stand-in Eureka server on loopback that records what clients send it."""
    seen: list[tuple[str, str, str, Any]] = []
    app = FastAPI()

    @app.api_route("/eureka/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def anything(path: str, request: Request) -> Response:
        body = await request.body()
        seen.append((request.method, path, request.headers.get("authorization", ""), body))
        if request.method == "GET":
            return Response('{"applications": {"application": []}}', media_type="application/json")
        return Response(status_code=204)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    # uvicorn has no "started" event to await
    await eventually(lambda: server.started or task.done(), what="uvicorn start-up")
    try:
        yield f"http://eureka:eureka123@127.0.0.1:{port}/eureka/", seen
    finally:
        server.should_exit = True
        await task


async def test_registers_and_unregisters(
    sqlite_databases: Databases, kafka_bootstrap: str, eureka: tuple[str, list[Any]]
) -> None:
    url, seen = eureka
    settings = sqlite_databases.settings(
        eureka_url=url,
        port=18085,
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False),
        batch=BatchSettings(scheduler_enabled=False),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        registrations = [
            s for s in seen if s[0] == "POST" and s[1].startswith("apps/BATCH-SERVICE")
        ]
        assert registrations, seen
        _method, _path, authorization, body = registrations[0]
        assert authorization == "Basic " + base64.b64encode(b"eureka:eureka123").decode()
        assert b"BATCH-SERVICE" in body and b"18085" in body
    assert any(s[0] == "DELETE" and "BATCH-SERVICE" in s[1] for s in seen)
