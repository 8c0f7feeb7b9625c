"""`PUT`/`DELETE /api/v1/tradeOrders/{id}`: version-checked changes, on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import DatabaseFactory
from tests.trade.factories import (
    ScriptedExecutionService,
    create_executions,
    order_payload,
    trade_app,
)
from tranche.core.migrations import upgrade


async def _unreachable(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("these tests never reach the execution service")


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
async def client(
    request: pytest.FixtureRequest, trade_sqlite_url: str, postgres_factory: DatabaseFactory
) -> AsyncIterator[httpx.AsyncClient]:
    url = trade_sqlite_url
    if request.param == "postgres":
        url = await postgres_factory("trade_crud")
        await upgrade("trade", url)
    async with trade_app(url, ScriptedExecutionService(_unreachable).transport()) as c:
        yield c


def _put_body(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "id": order["id"],
        "orderId": order["orderId"],
        "portfolioId": order["portfolioId"],
        "orderType": order["orderType"],
        "securityId": order["securityId"],
        "quantity": order["quantity"],
        "limitPrice": order["limitPrice"],
        "tradeTimestamp": order["tradeTimestamp"],
        "blotterId": order["blotter"]["id"] if order["blotter"] else None,
        "version": order["version"],
    }
    body.update(changes)
    return body


async def test_put_replaces_the_fields_and_bumps_the_version(client: httpx.AsyncClient) -> None:
    order = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    r = await client.put(
        f"/api/v1/tradeOrders/{order['id']}",
        json=_put_body(order, quantity=250, orderType="sell", blotterId=3),
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["quantity"], changed["orderType"], changed["blotter"]["abbreviation"]) == (
        250,
        "SELL",
        "FI",
    )
    assert changed["version"] == order["version"] + 1
    assert (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json() == changed


async def test_a_stale_put_or_delete_is_409_and_changes_nothing(client: httpx.AsyncClient) -> None:
    order = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    path = f"/api/v1/tradeOrders/{order['id']}"
    assert (await client.put(path, json=_put_body(order, quantity=7))).status_code == 200
    stale = await client.put(path, json=_put_body(order, quantity=9))
    assert stale.status_code == 409
    assert "Version mismatch" in stale.json()["message"]
    assert (await client.delete(path, params={"version": order["version"]})).status_code == 409
    assert (await client.get(path)).json()["quantity"] == 7


async def test_delete_with_the_current_version_is_204(client: httpx.AsyncClient) -> None:
    order = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    path = f"/api/v1/tradeOrders/{order['id']}"
    r = await client.delete(path, params={"version": order["version"]})
    assert r.status_code == 204
    assert (await client.get(path)).status_code == 404
    assert (await client.delete(path, params={"version": 1})).status_code == 404


async def test_an_order_with_executions_is_not_deleted(client: httpx.AsyncClient) -> None:
    (execution,) = await create_executions(client, 1)
    order = execution["tradeOrder"]
    current = (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json()
    r = await client.delete(
        f"/api/v1/tradeOrders/{order['id']}", params={"version": current["version"]}
    )
    assert r.status_code == 409
    assert "has executions" in r.json()["message"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": 1.123456789}, "quantity"),
        ({"orderType": "HOLD"}, "orderType"),
        ({"blotterId": 999}, "blotterId"),
        ({"version": None}, "version"),
        ({"portfolioId": ""}, "portfolioId"),
    ],
)
async def test_bad_puts_are_400_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str
) -> None:
    order = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    r = await client.put(f"/api/v1/tradeOrders/{order['id']}", json=_put_body(order, **changes))
    assert r.status_code == 400, r.text
    assert field in r.text
    assert (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json() == order


async def test_quantity_cannot_drop_below_what_was_sent(client: httpx.AsyncClient) -> None:
    (execution,) = await create_executions(client, 1)
    order = (await client.get(f"/api/v1/tradeOrders/{execution['tradeOrder']['id']}")).json()
    r = await client.put(f"/api/v1/tradeOrders/{order['id']}", json=_put_body(order, quantity=1))
    assert r.status_code == 400
    assert "quantity" in r.json()["validationErrors"]


async def test_another_orders_order_id_is_409(client: httpx.AsyncClient) -> None:
    first = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    second = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    r = await client.put(
        f"/api/v1/tradeOrders/{second['id']}", json=_put_body(second, orderId=first["orderId"])
    )
    assert r.status_code == 409


async def test_unknown_order_and_missing_version(client: httpx.AsyncClient) -> None:
    order = (await client.post("/api/v1/tradeOrders", json=order_payload())).json()
    r = await client.put("/api/v1/tradeOrders/99999999", json=_put_body(order))
    assert r.status_code == 404
    r = await client.delete(f"/api/v1/tradeOrders/{order['id']}")
    assert r.status_code == 400
    assert "version" in r.text
