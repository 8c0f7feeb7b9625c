"""`PUT`/`DELETE /api/v1/executions/{id}`: version-checked, the order's quantitySent kept
equal to the sum of its executions (PostgreSQL)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.trade.factories import create_executions

pytestmark = pytest.mark.postgres


def _put_body(execution: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "executionStatusId": execution["executionStatus"]["id"],
        "blotterId": execution["blotter"]["id"] if execution["blotter"] else None,
        "tradeTypeId": execution["tradeType"]["id"] if execution["tradeType"] else None,
        "tradeOrderId": execution["tradeOrder"]["id"],
        "destinationId": execution["destination"]["id"],
        "quantityOrdered": execution["quantityOrdered"],
        "quantityPlaced": execution["quantityPlaced"],
        "quantityFilled": execution["quantityFilled"],
        "limitPrice": execution["limitPrice"],
        "version": execution["version"],
    }
    body.update(changes)
    return body


async def _order(api: httpx.AsyncClient, execution: dict[str, Any]) -> dict[str, Any]:
    return (await api.get(f"/api/v1/tradeOrders/{execution['tradeOrder']['id']}")).json()


async def test_put_changes_the_execution_and_moves_quantity_sent(api: httpx.AsyncClient) -> None:
    (execution,) = await create_executions(api, 1)
    path = f"/api/v1/executions/{execution['id']}"
    r = await api.put(path, json=_put_body(execution, quantityOrdered="60", destinationId=3))
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["quantityOrdered"], changed["destination"]["abbreviation"]) == ("60.00", "JPM")
    assert changed["version"] == execution["version"] + 1
    order = await _order(api, execution)
    assert (order["quantitySent"], order["submitted"]) == (60, False)
    stale = await api.put(path, json=_put_body(execution, quantityOrdered="50"))
    assert stale.status_code == 409
    too_much = await api.put(path, json=_put_body(changed, quantityOrdered="101"))
    assert too_much.status_code == 400
    assert "quantityOrdered" in too_much.json()["validationErrors"]
    moved = await api.put(
        path, json=_put_body(changed, tradeOrderId=changed["tradeOrder"]["id"] + 1)
    )
    assert moved.status_code == 400
    assert "tradeOrderId" in moved.json()["validationErrors"]


async def test_delete_gives_the_quantity_back(api: httpx.AsyncClient) -> None:
    (execution,) = await create_executions(api, 1)
    path = f"/api/v1/executions/{execution['id']}"
    assert (await api.delete(path, params={"version": execution["version"] + 1})).status_code == 409
    assert (await api.delete(path, params={"version": execution["version"]})).status_code == 204
    assert (await api.get(path)).status_code == 404
    order = await _order(api, execution)
    assert (order["quantitySent"], order["submitted"]) == (0, False)
    assert (await api.delete(path, params={"version": 1})).status_code == 404


async def test_a_sent_execution_keeps_its_quantity_and_is_not_deleted(
    api: httpx.AsyncClient,
) -> None:
    (execution,) = await create_executions(api, 1)
    path = f"/api/v1/executions/{execution['id']}"
    sent = await api.put(path, json=_put_body(execution, executionServiceId=424242))
    assert sent.status_code == 200, sent.text
    body = sent.json()
    r = await api.put(path, json=_put_body(body, quantityOrdered="10", executionServiceId=424242))
    assert r.status_code == 400
    r = await api.delete(path, params={"version": body["version"]})
    assert r.status_code == 409
    assert "sent to the execution service" in r.json()["message"]


async def test_bad_puts_are_400_and_change_nothing(api: httpx.AsyncClient) -> None:
    (execution,) = await create_executions(api, 1)
    path = f"/api/v1/executions/{execution['id']}"
    for changes, field in (
        ({"executionStatusId": 999}, "executionStatusId"),
        ({"quantityPlaced": "101"}, "quantityPlaced"),
        ({"version": "x"}, "version"),
        ({"quantityOrdered": "1.123456789"}, "quantityOrdered"),
    ):
        r = await api.put(path, json=_put_body(execution, **changes))
        assert r.status_code == 400, r.text
        assert field in r.text
    assert (await api.get(path)).json() == execution
    assert (
        await api.put("/api/v1/executions/99999999", json=_put_body(execution))
    ).status_code == 404
