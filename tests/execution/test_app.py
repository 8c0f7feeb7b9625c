"""The service as deployed: settings, registration, actuator, metrics, and the demo scenario."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient

from tests.execution.factories import item
from tests.execution.harness import Harness, make_settings
from tests.fixtures.waiting import eventually
from tranche.core.broker import EmbeddedBroker, free_port
from tranche.core.migrations import upgrade
from tranche.core.service import DemoContext
from tranche.core.settings import SettingsError, load_settings
from tranche.execution.app import SPEC, create_app, demo_overrides
from tranche.execution.demo import demo_batch, run_demo
from tranche.execution.settings import ExecutionSettings
from tranche.services import SERVICES

pytestmark = [pytest.mark.kafka]


def test_registered_first_with_its_defaults(tmp_path: Path) -> None:
    assert next(iter(SERVICES)) == "execution"
    assert SERVICES["execution"] is SPEC
    settings = SPEC.load_settings(data_dir=tmp_path)
    assert settings.port == 8084
    [db] = SPEC.owned_databases(settings)
    assert db.env == "execution"
    assert db.url == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'execution.db'}"
    assert SPEC.outbox_url is not None and SPEC.outbox_url(settings) == db.url
    assert demo_overrides({"trade": "http://t:1"}) == {"trade_service_base_url": "http://t:1"}
    assert demo_overrides({}) == {}


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXECUTION_ALLOWED_TRADE_TYPES", "BUY, SELL")
    monkeypatch.setenv("EXECUTION_MAX_BATCH_SIZE", "5000")
    monkeypatch.setenv("EXECUTION_DATABASE_URL", "postgresql://u@db/x")
    s = load_settings(ExecutionSettings)
    assert s.allowed_trade_types == ("BUY", "SELL")
    assert s.max_batch_size == 5000
    assert s.execution_database_url() == "postgresql://u@db/x"
    for name, value in [
        ("EXECUTION_MAX_BATCH_SIZE", "10001"),
        ("EXECUTION_MIN_CHUNK_SIZE", "5000"),
        ("EXECUTION_ALLOWED_STATUSES", " , "),
        ("EXECUTION_ORDERS_TOPIC", "bad topic"),
        ("EXECUTION_INSERT_METHOD", "fastest"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=name):
            load_settings(ExecutionSettings)
        monkeypatch.delenv(name)


def test_copy_and_unnest_need_postgresql(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "127.0.0.1:9",
        tmp_path,
        "t",
        insert_method="copy",
    )
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        create_app(settings)


async def test_actuator_and_metrics(sqlite_app: Harness) -> None:
    c = sqlite_app.client
    ready = await c.get("/actuator/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["components"]["db"]["status"] == "UP"
    kafka = await c.get("/actuator/health/kafka")
    assert kafka.json()["components"]["kafka"]["status"] == "UP"
    info = (await c.get("/actuator/info")).json()["execution"]
    assert info["insertMethod"] == "values"
    assert info["maxBatchSize"] == 100
    await sqlite_app.post("/api/v1/executions/batch", {"executions": [item(), item(quantity=0)]})
    text = (await c.get("/actuator/prometheus")).text
    for name in (
        "execution_batch_duration_seconds_bucket",
        "execution_batch_size_bucket",
        'execution_batch_items_total{result="succeeded"}',
        'execution_batch_items_total{result="failed_validation"}',
        "execution_bulk_insert_seconds_bucket",
        "execution_bulk_insert_fallbacks_total",
        "execution_bulk_insert_chunk_size",
        'db_pool_in_use{pool="execution"}',
        'db_pool_size{pool="execution"}',
        "outbox_published_total",
        "outbox_pending",
        "outbox_circuit_state",
        "execution_publish_wait_seconds_bucket",
    ):
        assert name in text, name


def test_demo_batch_has_two_bad_items() -> None:
    items = demo_batch()
    assert len(items) == 40
    assert items[5]["quantity"] < 0
    assert items[17]["tradeType"] == "SWAP"


async def test_demo_scenario_against_a_real_server(broker: EmbeddedBroker, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    await upgrade("execution", url)
    port = free_port()
    settings = make_settings(url, broker.bootstrap_servers, tmp_path, "orders", port=port)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None)
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done(), what="uvicorn start-up")
        assert not task.done()
        said: list[str] = []
        ctx = DemoContext(
            {"execution": f"http://127.0.0.1:{port}"},
            broker.bootstrap_servers,
            tmp_path,
            said.append,
        )
        lines = await run_demo(settings, ctx)
    finally:
        server.should_exit = True
        await task
    results = {line.what: line.result for line in lines}
    assert results["POST /executions/batch (40 items)"].startswith("HTTP 207 PARTIAL_SUCCESS")
    assert "38 of 38 have sentTimestamp" in results["broker acknowledged before the answer"]
    assert "replayed=true" in results["same batch, same Idempotency-Key"]
    assert results["same fill with the old version"].startswith("HTTP 409")
    assert results["events on 'orders'"].startswith("38 of 38")


async def test_orders_topic_is_created_with_the_originals_partitions(sqlite_app: Harness) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sqlite_app.parts.settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        [topic] = await admin.describe_topics([sqlite_app.topic])
    finally:
        await admin.close()
    assert len(topic["partitions"]) == 20


async def test_cors_is_open_as_the_original(sqlite_app: Harness) -> None:
    r = await sqlite_app.client.options(
        "/api/v1/executions/batch",
        headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] in ("*", "http://ui.example")
