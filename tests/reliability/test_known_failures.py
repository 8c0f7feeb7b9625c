"""Failures known before the suite existed (issue 18): each fails without its fix.

A NUL byte or a lone surrogate cannot be stored (PostgreSQL refuses NUL in text, and a
surrogate cannot be encoded as UTF-8 for either database), and a timestamp whose offset
pushes it out of the years 1-9999 cannot be converted to UTC. All of these used to reach
the database and answer 500 — in a batch, taking the good items down with them.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from tests.execution.factories import item
from tests.execution.harness import Harness
from tests.trade.factories import order_payload
from tranche.execution.bulk_create import is_row_error

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

UNSTORABLE = ["M\u0000L", "\ud800", "ok\udfffok"]
#: The execution service's text fields and the label its messages name them by.
STRING_FIELDS = {
    "executionStatus": "Execution status",
    "tradeType": "Trade type",
    "destination": "Destination",
    "securityId": "Security ID",
}
OVERFLOWING = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate", "low-surrogate"])
@pytest.mark.parametrize("field", STRING_FIELDS)
async def test_batch_with_unstorable_text_fails_that_item_and_creates_the_rest(
    execution: Harness, field: str, text: str
) -> None:
    good = [item(), item()]
    before = await execution.count()
    body = {"executions": [good[0], item(**{field: text}), good[1]]}
    r = await execution.post("/api/v1/executions/batch", body)
    assert r.status_code == 207, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == ["SUCCESS", "FAILED", "SUCCESS"]
    assert STRING_FIELDS[field] in results[1]["message"]
    assert await execution.count() == before + 2


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate", "low-surrogate"])
async def test_single_create_with_unstorable_text_is_400_naming_the_field(
    execution: Harness, text: str
) -> None:
    before = await execution.count()
    r = await execution.post("/api/v1/executions", item(destination=text))
    assert r.status_code == 400, r.text
    assert "destination" in r.json()["validationErrors"]
    assert await execution.count() == before


async def _order_count(client: httpx.AsyncClient) -> int:
    r = await client.get("/api/v1/tradeOrders", params={"limit": 1})
    assert r.status_code == 200, r.text
    body: Any = r.json()
    return int(body["pagination"]["totalElements"]) if isinstance(body, dict) else len(body)


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate", "low-surrogate"])
@pytest.mark.parametrize("field", ["portfolioId", "securityId", "orderType"])
async def test_trade_order_with_unstorable_text_is_400_naming_the_field(
    trade: httpx.AsyncClient, field: str, text: str
) -> None:
    before = await _order_count(trade)
    r = await trade.post(
        "/api/v1/tradeOrders",
        content=_json({**order_payload(), field: text}),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert field in r.json()["validationErrors"]
    assert await _order_count(trade) == before
    r = await trade.post("/api/v1/tradeOrders", json=order_payload())
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("stamp", OVERFLOWING)
async def test_trade_timestamp_overflowing_utc_is_400_naming_the_field(
    trade: httpx.AsyncClient, stamp: str
) -> None:
    before = await _order_count(trade)
    r = await trade.post("/api/v1/tradeOrders", json=order_payload(tradeTimestamp=stamp))
    assert r.status_code == 400, r.text
    assert "tradeTimestamp" in r.json()["validationErrors"]
    assert await _order_count(trade) == before


@pytest.mark.parametrize("stamp", OVERFLOWING)
async def test_execution_timestamp_overflowing_utc_is_400_naming_the_field(
    trade: httpx.AsyncClient, stamp: str
) -> None:
    order = await trade.post("/api/v1/tradeOrders", json=order_payload())
    assert order.status_code == 201, order.text
    body = {
        "executionTimestamp": stamp,
        "executionStatusId": 1,
        "tradeOrderId": order.json()["id"],
        "destinationId": 1,
        "quantityOrdered": 10,
    }
    r = await trade.post("/api/v1/executions", json=body)
    assert r.status_code == 400, r.text
    assert "executionTimestamp" in r.json()["validationErrors"]


@pytest.mark.parametrize("text", UNSTORABLE, ids=["nul", "surrogate", "low-surrogate"])
async def test_fill_with_unstorable_status_is_400_naming_the_field(
    trade: httpx.AsyncClient, text: str
) -> None:
    body = {"executionStatus": text, "quantityFilled": 1, "version": 1}
    r = await trade.put(
        "/api/v1/executions/1/fill",
        content=_json(body),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400, r.text
    assert "executionStatus" in r.json()["validationErrors"]


def _json(body: Any) -> bytes:
    import json

    return json.dumps(body).encode()


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "row"),
    [("22021", True), ("22003", True), ("23505", True), ("08006", False), ("57P01", False)],
)
def test_row_by_row_fallback_treats_data_exceptions_as_the_rows_fault(
    sqlstate: str, row: bool
) -> None:
    """asyncpg's class-22 errors arrive as a plain DBAPIError; the fallback that isolates a
    bad row must still blame the row (else the whole batch rolls back with a 500)."""
    exc = DBAPIError("INSERT", {}, _PgError(sqlstate))
    assert is_row_error(exc) is row
