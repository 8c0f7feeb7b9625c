"""A database that cannot be reached answers 503 with the error body, never the URL."""

from __future__ import annotations

from tests.trade.factories import serving, trade_settings
from tranche.core.broker import free_port
from tranche.trade.app import create_app

SECRET = "pw-never-shown-91c2"


async def test_a_dead_database_answers_503_without_its_url() -> None:
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    url = f"postgresql+asyncpg://trade:{SECRET}@{host}/trade_gone"
    async with serving(create_app(trade_settings(url))) as client:
        answers = [
            await client.get("/api/v1/tradeOrders/1"),
            await client.get("/api/v1/executions"),
            await client.post("/api/v1/execution/1/submit"),
        ]
    for r in answers:
        assert r.status_code == 503, r.text
        assert r.headers["Retry-After"] == "5"
        body = r.json()
        assert body["status"] == 503
        assert body["message"] == "The database is unavailable; retry later"
        assert set(body) >= {"timestamp", "error", "path", "validationErrors"}
        for leak in (SECRET, host, "trade_gone", "postgresql"):
            assert leak not in r.text
