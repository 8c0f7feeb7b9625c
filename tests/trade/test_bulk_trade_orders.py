"""`POST /api/v1/tradeOrders/bulk`: up to 1000 trade orders created all or nothing, on
PostgreSQL and SQLite, answered with the original's BulkTradeOrderResponseDTO."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import postgres_databases
from tests.trade.factories import ScriptedExecutionService, order_payload, trade_app
from tranche.core.migrations import upgrade


async def _unreachable(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("bulk creation never reaches the execution service")


@pytest.fixture(
    scope="module", params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"]
)
async def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The trade app on a fresh PostgreSQL database or a SQLite file, for the module."""
    transport = ScriptedExecutionService(_unreachable).transport()
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('bulk') / 'trade.db'}"
        await upgrade("trade", url)
        async with trade_app(url, transport) as client:
            yield client
        return
    async with postgres_databases() as databases:
        url = await databases("trade_bulk")
        await upgrade("trade", url)
        async with trade_app(url, transport) as client:
            yield client


async def _count(api: httpx.AsyncClient, order_id: int) -> int:
    listed = await api.get("/api/v1/tradeOrders", params={"order_id": order_id})
    return int(listed.headers["X-Total-Count"])


async def test_every_order_is_created_in_request_order(api: httpx.AsyncClient) -> None:
    orders = [order_payload(quantity="12345.12345678"), order_payload(blotterId=None)]
    answer = await api.post("/api/v1/tradeOrders/bulk", json={"tradeOrders": orders})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["status"], body["totalRequested"], body["successful"], body["failed"]) == (
        "SUCCESS",
        2,
        2,
        0,
    )
    assert body["message"] == "All trade orders created successfully"
    results = body["results"]
    assert [r["requestIndex"] for r in results] == [0, 1]
    assert {r["status"] for r in results} == {"SUCCESS"}
    assert [r["tradeOrder"]["orderId"] for r in results] == [o["orderId"] for o in orders]
    first = results[0]["tradeOrder"]
    assert b'"quantity":12345.12345678' in answer.content.replace(b" ", b"")
    assert first["blotter"]["abbreviation"] == "EQ"
    assert (first["quantitySent"], first["submitted"], first["version"]) == (0, False, 1)
    assert results[1]["tradeOrder"]["blotter"] is None
    fetched = await api.get(f"/api/v1/tradeOrders/{first['id']}")
    assert fetched.json()["orderId"] == orders[0]["orderId"]


async def test_one_bad_item_creates_nothing_and_is_named(api: httpx.AsyncClient) -> None:
    good, bad = order_payload(), order_payload(quantity=0)
    answer = await api.post("/api/v1/tradeOrders/bulk", json={"tradeOrders": [good, bad]})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["status"], body["successful"], body["failed"]) == ("FAILURE", 0, 2)
    assert body["message"].startswith(
        "Bulk operation failed due to validation errors: "
        "Validation failed for trade order at index 1: quantity"
    )
    assert body["results"][0]["message"].startswith("Not created")
    assert "quantity" in body["results"][1]["message"]
    assert all(r["tradeOrder"] is None for r in body["results"])
    assert await _count(api, good["orderId"]) == 0


async def test_taken_and_repeated_order_ids_fail_their_items(api: httpx.AsyncClient) -> None:
    existing = order_payload()
    assert (await api.post("/api/v1/tradeOrders", json=existing)).status_code == 201
    fresh = order_payload()
    again = dict(fresh, portfolioId="OTHER")
    answer = await api.post(
        "/api/v1/tradeOrders/bulk",
        json={"tradeOrders": [fresh, order_payload(orderId=existing["orderId"]), again]},
    )
    assert answer.status_code == 400, answer.text
    messages = [r["message"] for r in answer.json()["results"]]
    assert "duplicates request index 0" in messages[2]
    answer = await api.post(
        "/api/v1/tradeOrders/bulk",
        json={"tradeOrders": [fresh, order_payload(orderId=existing["orderId"])]},
    )
    assert answer.status_code == 400
    assert f"orderId {existing['orderId']} exists" in answer.json()["results"][1]["message"]
    unknown_blotter = await api.post(
        "/api/v1/tradeOrders/bulk", json={"tradeOrders": [order_payload(blotterId=999)]}
    )
    assert "blotter 999 does not exist" in unknown_blotter.json()["results"][0]["message"]
    assert await _count(api, fresh["orderId"]) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"tradeOrders": []}, {"tradeOrders": None}, [order_payload()]],
    ids=["missing", "empty", "null", "bare-list"],
)
async def test_a_malformed_request_is_a_400_naming_it(api: httpx.AsyncClient, body: object) -> None:
    answer = await api.post("/api/v1/tradeOrders/bulk", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["validationErrors"]


async def test_more_than_1000_orders_are_refused(api: httpx.AsyncClient) -> None:
    orders = [order_payload() for _ in range(1001)]
    answer = await api.post("/api/v1/tradeOrders/bulk", json={"tradeOrders": orders})
    assert answer.status_code == 400
    assert "tradeOrders" in answer.json()["validationErrors"]
    assert await _count(api, orders[0]["orderId"]) == 0
