"""`tranche db upgrade execution` adopts a database the original execution service built.

The database is the original's as Flyway left it (V1-V4 and ``flyway_schema_history``,
:mod:`tests.fixtures.originals`) holding rows its single-POST, batch and PUT paths wrote.
The upgrade keeps every row, the history and the V4 indexes, adds tranche's tables, and
the API then serves and changes those rows: ids, versions and exact decimals as stored.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.execution.harness import running
from tests.fixtures.originals import EXECUTION_FLYWAY, EXECUTION_ROWS, build_original, fetch
from tests.fixtures.servers import DatabaseFactory
from tranche.core.broker import EmbeddedBroker
from tranche.core.migrations import upgrade

pytestmark = pytest.mark.postgres


@pytest.fixture
async def original_url(postgres_factory: DatabaseFactory) -> str:
    url = await postgres_factory("execution_original")
    await build_original(url, EXECUTION_FLYWAY, EXECUTION_ROWS)
    return url


async def test_the_upgrade_keeps_rows_history_and_indexes(original_url: str) -> None:
    rows = "SELECT * FROM execution ORDER BY id"
    before = await fetch(original_url, rows)
    history = await fetch(original_url, "SELECT * FROM flyway_schema_history ORDER BY 1")
    await upgrade("execution", original_url)
    await upgrade("execution", original_url)  # a second run finds nothing to do
    assert await fetch(original_url, rows) == before
    assert await fetch(original_url, "SELECT * FROM flyway_schema_history ORDER BY 1") == history
    assert before[0]["security_id"] == "5f47ac10b8e5a5f2c9d3e1b1"
    assert before[1]["security_id"] == "SEC2".ljust(24)  # char(24) padding kept in the row
    tables = {
        r["tablename"]
        for r in await fetch(
            original_url, "SELECT tablename FROM pg_tables WHERE schemaname='public'"
        )
    }
    assert {"outbox", "trade_fill_callback", "alembic_version_execution"} <= tables
    indexes = {
        r["indexname"] for r in await fetch(original_url, "SELECT indexname FROM pg_indexes")
    }
    assert {"idx_covering_common_fields", "idx_version", "idx_upper_execution_status"} <= indexes
    serial = await fetch(original_url, "SELECT last_value FROM execution_id_seq")
    assert serial[0]["last_value"] == 3  # the serial was not reset


@pytest.mark.kafka
async def test_the_api_serves_and_changes_the_originals_rows(
    broker: EmbeddedBroker, original_url: str, tmp_path: Path
) -> None:
    async with running(original_url, broker.bootstrap_servers, tmp_path) as app:
        single = (await app.client.get("/api/v1/execution/1")).json()
        assert single["securityId"] == single["security"]["securityId"]
        assert single["securityId"] == "5f47ac10b8e5a5f2c9d3e1b1"
        assert (single["version"], single["averagePrice"], single["quantity"]) == (1, None, 100.5)
        batched = (await app.client.get("/api/v1/execution/2")).json()
        assert batched["securityId"] == "SEC2"  # blank padding not shown
        assert (batched["version"], batched["averagePrice"]) == (2, 0)
        assert batched["tradeServiceExecutionId"] == 71
        filled = await app.client.get("/api/v1/execution/3")
        assert b'"quantity":1234567890.12345678' in filled.content.replace(b" ", b"")
        assert filled.json()["executionStatus"] == "PART"

        page = (await app.client.get("/api/v1/executions", params={"limit": 2})).json()
        assert page["pagination"]["totalElements"] == 3
        assert page["pagination"]["hasNext"] is True
        part = (
            await app.client.get("/api/v1/executions", params={"executionStatus": "PART"})
        ).json()
        assert [e["id"] for e in part["content"]] == [3]

        stale = await app.put(
            "/api/v1/execution/3", {"quantityFilled": 50, "averagePrice": 12.3, "version": 2}
        )
        assert stale.status_code == 409, stale.text
        fill = {"quantityFilled": "1234567890.12345678", "averagePrice": 12.3, "version": 3}
        done = await app.put("/api/v1/execution/3", fill)
        assert done.status_code == 200, done.text
        assert (done.json()["executionStatus"], done.json()["version"]) == ("FULL", 4)

        post = {
            "executionStatus": "NEW",
            "tradeType": "BUY",
            "destination": "ML",
            "securityId": "SEC4",
            "quantity": 5,
            "limitPrice": None,
            "tradeServiceExecutionId": None,
            "version": 0,
        }
        created = await app.post("/api/v1/executions", post)
        assert created.status_code == 201, created.text
        assert created.json()["id"] == 4  # the original's serial continues
        batch = await app.post("/api/v1/executions/batch", {"executions": [post, post]})
        assert batch.status_code == 201, batch.text
        assert [r["execution"]["id"] for r in batch.json()["results"]] == [5, 6]
        stored = await app.scalar("SELECT quantity FROM execution WHERE id = 3")
        assert stored == Decimal("1234567890.12345678")
        assert await app.scalar("SELECT count(*) FROM outbox") == 3


async def test_a_table_that_is_not_the_originals_is_refused(
    postgres_factory: DatabaseFactory,
) -> None:
    url = await postgres_factory("execution_foreign")
    await build_original(url, "CREATE TABLE execution (id serial PRIMARY KEY, note text)")
    with pytest.raises(RuntimeError, match="not the execution service's"):
        await upgrade("execution", url)
