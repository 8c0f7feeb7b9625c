"""`GET /api/v2/tradeOrders`: paging, filtering and sorting in SQL (PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from tests.trade.factories import create_executions, create_orders

pytestmark = pytest.mark.postgres


async def test_paging_filtering_and_sorting(api: httpx.AsyncClient) -> None:
    portfolio = "v2portfolio000000000001"
    small = await create_orders(api, 3, quantity=10, orderType="SELL", portfolioId=portfolio)
    large = await create_orders(api, 2, quantity=500, orderType="BUY", portfolioId=portfolio)
    mine = {o["id"] for o in small + large}
    r = await api.get(
        "/api/v2/tradeOrders",
        params={"orderType": "sell", "quantity.max": "10", "limit": 2, "sort": "-id"},
    )
    assert r.status_code == 200, r.text
    page = r.json()
    ids = [o["id"] for o in page["tradeOrders"]]
    assert ids == sorted(ids, reverse=True)
    assert set(ids) <= mine | set(range(1, min(mine)))
    assert page["pagination"]["pageSize"] == 2
    assert page["pagination"]["currentPage"] == 0
    assert page["pagination"]["hasPrevious"] is False
    first = page["tradeOrders"][0]
    assert first["portfolio"] == {"portfolioId": portfolio, "name": None}
    assert first["security"]["securityId"] == small[0]["securityId"]
    big = (
        await api.get("/api/v2/tradeOrders", params={"quantity.min": "500", "sort": "quantity,id"})
    ).json()
    assert {o["id"] for o in big["tradeOrders"]} >= {o["id"] for o in large}
    assert all(o["quantity"] >= 500 for o in big["tradeOrders"])
    one = (await api.get("/api/v2/tradeOrders", params={"id": small[1]["id"]})).json()
    assert [o["id"] for o in one["tradeOrders"]] == [small[1]["id"]]
    assert one["pagination"]["totalElements"] == 1
    eq = (await api.get("/api/v2/tradeOrders", params={"blotter.abbreviation": "EQ"})).json()
    assert all(o["blotter"]["abbreviation"] == "EQ" for o in eq["tradeOrders"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "nonsense"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"quantity.min": "5", "quantity.max": "1"}, "quantity.min"),
        ({"quantity.min": "-1"}, "quantity.min"),
        ({"quantity.min": "abc"}, "quantity.min"),
        ({"portfolio.name": "Growth"}, "portfolio.name"),
        ({"submitted": "maybe"}, "submitted"),
    ],
)
async def test_bad_parameters_are_400_naming_them(
    api: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    r = await api.get("/api/v2/tradeOrders", params=params)
    assert r.status_code == 400, r.text
    assert field in r.text


async def test_v2_executions_page_filter_and_sort(api: httpx.AsyncClient) -> None:
    executions = await create_executions(api, 3)
    ids = [e["id"] for e in executions]
    r = await api.get(
        "/api/v2/executions",
        params={
            "executionStatus.abbreviation": "new",
            "destination.abbreviation": "ML",
            "sort": "-id",
            "limit": 2,
            "quantityOrdered.min": "100",
        },
    )
    assert r.status_code == 200, r.text
    page = r.json()
    got = [e["id"] for e in page["executions"]]
    assert got == sorted(got, reverse=True)
    assert got[0] == max(ids)
    assert page["pagination"]["pageSize"] == 2
    assert page["pagination"]["hasNext"] is True
    first = page["executions"][0]
    assert first["executionStatus"]["abbreviation"] == "NEW"
    assert first["quantityOrdered"] == 100  # a number here, not v1's two-place string
    assert first["tradeOrder"]["portfolio"]["name"] is None
    one = (
        await api.get(
            "/api/v2/executions", params={"tradeOrderId": executions[1]["tradeOrder"]["id"]}
        )
    ).json()
    assert [e["id"] for e in one["executions"]] == [ids[1]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "quantity"}, "sort"),
        ({"quantityFilled.min": "3", "quantityFilled.max": "2"}, "quantityFilled.min"),
        ({"security.ticker": "IBM"}, "security.ticker"),
        ({"executionServiceId": "x"}, "executionServiceId"),
    ],
)
async def test_bad_v2_execution_parameters_are_400(
    api: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    r = await api.get("/api/v2/executions", params=params)
    assert r.status_code == 400, r.text
    assert field in r.text
