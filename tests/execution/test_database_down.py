"""A database that cannot be reached answers 503 with the error body, never the URL."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.execution.harness import make_settings
from tranche.core.broker import EmbeddedBroker, free_port
from tranche.execution.app import create_app

pytestmark = [pytest.mark.kafka]

SECRET = "pw-never-shown-7f3a"


async def test_a_dead_database_answers_503_without_its_url(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    url = f"postgresql+asyncpg://tranche:{SECRET}@{host}/execution_gone"
    settings = make_settings(url, broker.bootstrap_servers, tmp_path, "orders.dead")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://execution") as client:
            answers = [
                await client.get("/api/v1/execution/1"),
                await client.get("/api/v1/executions"),
            ]
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
        body = r.json()
        assert body["status"] == 503 and body["message"] == (
            "The database is unavailable; retry later"
        )
        assert set(body) >= {"timestamp", "error", "path", "validationErrors"}
        for leak in (SECRET, host, "execution_gone", "postgresql"):
            assert leak not in r.text
