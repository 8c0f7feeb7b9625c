"""A database that cannot be reached answers 503 with the error body, never the URL."""

from __future__ import annotations

import httpx
import pytest

from tests.doctoral.factories import admin_token
from tests.doctoral.harness import Databases
from tranche.batch import BatchSettings
from tranche.core.broker import free_port
from tranche.core.settings import KafkaSettings
from tranche.doctoral.app import create_app

pytestmark = [pytest.mark.kafka]

SECRET = "pw-never-shown-4b8e"


@pytest.mark.parametrize("driver", ["mysql+asyncmy", "postgresql+asyncpg"])
async def test_a_dead_batch_database_answers_503_without_its_url(
    sqlite_databases: Databases, kafka_bootstrap: str, driver: str
) -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    settings = sqlite_databases.settings(
        batch_db_url=f"{driver}://batch:{SECRET}@{host}/batch_gone",
        batch=BatchSettings(scheduler_enabled=False),
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False),
    )
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {admin_token()}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://batch") as client:
            answers = [
                await client.get("/api/batch/jobs/executions/1", headers=headers),
                await client.get("/api/batch/jobs/stats", headers=headers),
            ]
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
        body = r.json()
        assert body["status"] == 503
        assert body["message"] == "The database is unavailable; retry later"
        assert set(body) >= {"timestamp", "error", "path", "validationErrors"}
        for leak in (SECRET, host, "batch_gone", driver):
            assert leak not in r.text
