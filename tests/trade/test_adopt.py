"""`tranche db upgrade trade` on a database the original trade service created adopts it.

The original's schema is rebuilt as its Flyway migrations left it (reference part B2,
:mod:`tests.fixtures.originals`: V1 tables and foreign keys, the V2-V5 seeds, V6's
``submitted`` column, a V7 index, the Flyway history table) with rows written as the
original wrote them (blank-padded ``char(24)`` ids, versions above 1). After the upgrade the API serves and changes
those rows, and nothing the original wrote has moved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.originals import TRADE_FLYWAY, TRADE_ROWS, build_original, fetch
from tests.fixtures.servers import DatabaseFactory
from tests.trade.factories import ScriptedExecutionService, order_payload, trade_app
from tranche.core.migrations import upgrade

pytestmark = pytest.mark.postgres


async def _answer_nothing(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("adoption tests never reach the execution service")


@pytest.fixture
async def original_url(postgres_factory: DatabaseFactory) -> str:
    url = await postgres_factory("trade_original")
    await build_original(url, TRADE_FLYWAY, TRADE_ROWS)
    return url


@pytest.fixture
async def adopted(original_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await upgrade("trade", original_url)
    async with trade_app(original_url, ScriptedExecutionService(_answer_nothing).transport()) as c:
        yield c


async def test_the_upgrade_adds_columns_and_leaves_every_row(original_url: str) -> None:
    before = await fetch(original_url, "SELECT * FROM trade_order ORDER BY id")
    await upgrade("trade", original_url)
    await upgrade("trade", original_url)  # a second run finds nothing to do
    after = await fetch(original_url, "SELECT * FROM trade_order ORDER BY id")
    assert after == before
    counts = await fetch(
        original_url,
        "SELECT (SELECT count(*) FROM blotter) b, (SELECT count(*) FROM execution_status) s,"
        " (SELECT count(*) FROM flyway_schema_history) f",
    )
    assert counts[0] == {"b": 4, "s": 10, "f": 7}  # seeds not inserted twice
    columns = await fetch(
        original_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'execution'",
    )
    assert {"average_price", "submission_claimed_at"} <= {r["column_name"] for r in columns}
    indexes = await fetch(original_url, "SELECT indexname FROM pg_indexes")
    names = {r["indexname"] for r in indexes}
    assert {"idx_executions_status_timestamp_desc", "execution_trade_order_ndx"} <= names


async def test_the_api_serves_the_originals_rows(adopted: httpx.AsyncClient) -> None:
    order = (await adopted.get("/api/v1/tradeOrders/1")).json()
    assert order["portfolioId"] == "PORT1"  # char(24) padding not shown
    assert order["orderType"] == "BUY"
    assert order["quantity"] == 100.5
    assert order["quantitySent"] == 40
    assert order["version"] == 3
    assert order["blotter"]["abbreviation"] == "EQ"
    listed = await adopted.get("/api/v1/tradeOrders", params={"order_id": 502})
    assert [o["id"] for o in listed.json()] == [2]
    execution = (await adopted.get("/api/v1/executions/1")).json()
    assert execution["executionServiceId"] == 9001
    assert execution["quantityOrdered"] == "40.00"
    assert execution["averagePrice"] is None
    assert execution["tradeOrder"]["securityId"] == "SEC1"


async def test_the_originals_rows_can_be_changed(adopted: httpx.AsyncClient) -> None:
    fill = await adopted.put(
        "/api/v1/executions/1/fill",
        json={"executionStatus": "PART", "quantityFilled": 15, "version": 2},
    )
    assert fill.status_code == 200, fill.text
    assert fill.json()["version"] == 3
    submitted = await adopted.post(
        "/api/v1/tradeOrders/1/submit",
        params={"noExecuteSubmit": "true"},
        json={"quantity": 60.5, "destinationId": 1},
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["id"] == 2  # the original's serial continues
    order = (await adopted.get("/api/v1/tradeOrders/1")).json()
    assert order["quantitySent"] == 100.5
    assert order["submitted"] is True
    new = await adopted.post("/api/v1/tradeOrders", json=order_payload(orderId=503))
    assert new.status_code == 201, new.text
    assert new.json()["id"] == 3


async def test_a_partial_original_schema_is_refused(postgres_factory: DatabaseFactory) -> None:
    url = await postgres_factory("trade_partial")
    await build_original(url, "CREATE TABLE blotter (id serial PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="some of the trade service's tables"):
        await upgrade("trade", url)


async def test_a_database_from_before_v6_gets_the_submitted_column(
    postgres_factory: DatabaseFactory,
) -> None:
    """Some releases of the original shipped a different V6 (composite indexes) and never
    had ``trade_order.submitted``: the upgrade adds it, false for the existing orders."""
    url = await postgres_factory("trade_pre_v6")
    schema = TRADE_FLYWAY.replace(
        "ALTER TABLE trade_order ADD COLUMN submitted boolean DEFAULT false;", ""
    )
    assert schema != TRADE_FLYWAY
    await build_original(
        url,
        schema,
        "INSERT INTO trade_order (order_id, portfolio_id, order_type, security_id, quantity)"
        " VALUES (601, 'P', 'BUY', 'S', 5)",
    )
    await upgrade("trade", url)
    async with trade_app(url, ScriptedExecutionService(_answer_nothing).transport()) as client:
        order = (await client.get("/api/v1/tradeOrders/1")).json()
    assert (order["orderId"], order["submitted"], order["version"]) == (601, False, 1)
