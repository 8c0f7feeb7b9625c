"""``PUT /api/v1/executions/{id}/fill``: the execution service reporting fills, on PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.trade.factories import create_orders

pytestmark = pytest.mark.postgres


async def _placed_execution(api: httpx.AsyncClient, quantity: int = 80) -> dict[str, Any]:
    """An execution as if accepted by the execution service (placed = ordered)."""
    (order,) = await create_orders(api, 1, quantity=quantity)
    body = {
        "executionStatusId": 2,
        "tradeTypeId": 1,
        "tradeOrderId": order["id"],
        "destinationId": 1,
        "quantityOrdered": quantity,
        "quantityPlaced": quantity,
        "executionServiceId": 4242,
    }
    r = await api.post("/api/v1/executions", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_fill_updates_status_quantity_and_version(api: httpx.AsyncClient) -> None:
    execution = await _placed_execution(api)
    r = await api.put(
        f"/api/v1/executions/{execution['id']}/fill",
        json={
            "executionStatus": "PART",
            "quantityFilled": 30,
            "version": 1,
            "averagePrice": 12.345,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["executionStatus"]["abbreviation"], body["quantityFilled"], body["version"]) == (
        "PART",
        "30.00",
        2,
    )
    assert body["averagePrice"] == "12.35"
    assert body["tradeOrder"] == execution["tradeOrder"]


async def test_a_stale_fill_is_409_with_the_current_version(api: httpx.AsyncClient) -> None:
    execution = await _placed_execution(api)
    r = await api.put(
        f"/api/v1/executions/{execution['id']}/fill",
        json={"executionStatus": "FULL", "quantityFilled": 80, "version": 7},
    )
    assert r.status_code == 409
    assert r.json()["error"].startswith("Version mismatch")
    assert r.json()["currentVersion"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"executionStatus": "FILL", "quantityFilled": 1, "version": 1}, "executionStatus"),
        ({"executionStatus": "PART", "quantityFilled": 81, "version": 1}, "quantityFilled"),
        ({"executionStatus": "PART", "quantityFilled": -1, "version": 1}, "quantityFilled"),
        ({"executionStatus": "PART", "quantityFilled": 1}, "version"),
    ],
)
async def test_bad_fills_are_400_and_change_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    execution = await _placed_execution(api)
    r = await api.put(f"/api/v1/executions/{execution['id']}/fill", json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["validationErrors"]
    if field == "executionStatus":
        assert "NEW, SENT, WORK, FULL, PART, HOLD, CNCL, CNCLD, CPART, DEL" in r.json()["error"]
    assert (await api.get(f"/api/v1/executions/{execution['id']}")).json() == execution


async def test_fill_of_an_unknown_execution_is_404(api: httpx.AsyncClient) -> None:
    r = await api.put(
        "/api/v1/executions/999999/fill",
        json={"executionStatus": "PART", "quantityFilled": 1, "version": 1},
    )
    assert r.status_code == 404
