"""The trade service's API on PostgreSQL: contract shapes, lookups, validation, batch requests.

The execution service is not involved here (``noExecuteSubmit`` or no submission);
its protocol is covered by test_submission and test_end_to_end.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.trade.factories import create_executions, create_orders, order_payload

pytestmark = pytest.mark.postgres

TRADE_ORDER_FIELDS = {
    "id",
    "orderId",
    "portfolioId",
    "orderType",
    "securityId",
    "quantity",
    "quantitySent",
    "limitPrice",
    "tradeTimestamp",
    "blotter",
    "submitted",
    "version",
}
EXECUTION_FIELDS = {
    "id",
    "executionTimestamp",
    "executionStatus",
    "blotter",
    "tradeType",
    "tradeOrder",
    "destination",
    "quantityOrdered",
    "quantityPlaced",
    "quantityFilled",
    "limitPrice",
    "version",
    "executionServiceId",
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/v1/blotters",
            [
                (1, "Default", "Default"),
                (2, "EQ", "Equity"),
                (3, "FI", "Fixed Income"),
                (4, "HOLD", "Hold"),
            ],
        ),
        (
            "/api/v1/tradeTypes",
            [
                (1, "BUY", "Buy"),
                (2, "SELL", "Sell"),
                (3, "SHORT", "Sell to Open"),
                (4, "COVER", "Buy to Close"),
                (5, "EXRC", "Exercise"),
            ],
        ),
        (
            "/api/v1/destinations",
            [
                (1, "ML", "Merrill Lynch"),
                (2, "RBC", "Royal Bank of Canada"),
                (3, "JPM", "Chase"),
                (4, "IB", "Interactive Brokers"),
                (5, "INST", "Instinet"),
                (6, "POSIT", "Posit"),
            ],
        ),
        (
            "/api/v1/executionStatuses",
            [
                (1, "NEW", "New"),
                (2, "SENT", "Sent"),
                (3, "WORK", "In progress"),
                (4, "FULL", "Filled"),
                (5, "PART", "Partial fill"),
                (6, "HOLD", "Hold"),
                (7, "CNCL", "Cancel"),
                (8, "CNCLD", "Cancelled"),
                (9, "CPART", "Cancelled with partial fill"),
                (10, "DEL", "Delete"),
            ],
        ),
    ],
)
async def test_lookups_are_seeded_with_the_original_ids(
    api: httpx.AsyncClient, path: str, expected: list[tuple[int, str, str]]
) -> None:
    rows = (await api.get(path)).json()
    text = "name" if "blotters" in path else "description"
    assert [(r["id"], r["abbreviation"], r[text]) for r in rows] == expected
    assert {r["version"] for r in rows} == {1}


@pytest.mark.parametrize(
    ("path", "abbreviation"),
    [
        ("/api/v1/blotters/3", "FI"),
        ("/api/v1/tradeType/5", "EXRC"),
        ("/api/v1/tradeTypes/5", "EXRC"),
        ("/api/v1/destinations/6", "POSIT"),
        ("/api/v1/executionStatuses/2", "SENT"),
    ],
)
async def test_lookup_by_id(api: httpx.AsyncClient, path: str, abbreviation: str) -> None:
    r = await api.get(path)
    assert r.status_code == 200 and r.json()["abbreviation"] == abbreviation


async def test_unknown_lookup_is_404_with_a_json_body(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/v1/destinations/99")
    assert r.status_code == 404
    assert r.json()["message"] == "Destination not found: 99"


async def test_create_trade_order_answers_the_original_shape(api: httpx.AsyncClient) -> None:
    payload = order_payload(orderType=" sell ", quantity=250.5, limitPrice=None)
    r = await api.post("/api/v1/tradeOrders", json=payload)
    body = r.json()
    assert r.status_code == 201
    assert set(body) == TRADE_ORDER_FIELDS
    assert body["orderType"] == "SELL"
    assert body["portfolioId"] == payload["portfolioId"]
    assert (body["quantity"], body["quantitySent"], body["limitPrice"]) == (250.5, 0, None)
    assert body["blotter"] == {"id": 2, "abbreviation": "EQ", "name": "Equity", "version": 1}
    assert (body["submitted"], body["version"]) == (False, 1)
    assert body["tradeTimestamp"].startswith("2024-06-01T12:00:00")
    assert (await api.get(f"/api/v1/tradeOrders/{body['id']}")).json() == body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": 0}, "quantity"),
        ({"quantity": -5}, "quantity"),
        ({"quantity": "1.123456789"}, "quantity"),
        ({"quantity": 12345678901}, "quantity"),
        ({"orderType": "HOLD"}, "orderType"),
        ({"portfolioId": "x" * 25}, "portfolioId"),
        ({"securityId": None}, "securityId"),
        ({"orderId": "abc"}, "orderId"),
        ({"limitPrice": 0}, "limitPrice"),
        ({"blotterId": 77}, "blotterId"),
    ],
)
async def test_bad_trade_orders_are_400_naming_the_field(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    payload = order_payload(**change)
    r = await api.post("/api/v1/tradeOrders", json=payload)
    assert r.status_code == 400, r.text
    assert field in r.json()["validationErrors"]
    if isinstance(payload["orderId"], int):
        found = await api.get("/api/v1/tradeOrders", params={"order_id": payload["orderId"]})
        assert found.json() == []


async def test_a_second_order_with_the_same_order_id_is_409(api: httpx.AsyncClient) -> None:
    payload = order_payload()
    assert (await api.post("/api/v1/tradeOrders", json=payload)).status_code == 201
    r = await api.post("/api/v1/tradeOrders", json=payload)
    assert r.status_code == 409 and "orderId" in r.json()["validationErrors"]


async def test_trade_order_paging_sends_x_total_count(api: httpx.AsyncClient) -> None:
    await create_orders(api, 3)
    everything = await api.get("/api/v1/tradeOrders")
    assert "X-Total-Count" not in everything.headers
    total = len(everything.json())
    page = await api.get("/api/v1/tradeOrders", params={"limit": 2, "offset": 1})
    assert page.headers["X-Total-Count"] == str(total)
    assert [o["id"] for o in page.json()] == [o["id"] for o in everything.json()[1:3]]
    one = everything.json()[0]
    by_order_id = await api.get("/api/v1/tradeOrders", params={"order_id": one["orderId"]})
    assert by_order_id.headers["X-Total-Count"] == "1" and by_order_id.json() == [one]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}])
async def test_bad_paging_is_400(api: httpx.AsyncClient, params: dict[str, Any]) -> None:
    assert (await api.get("/api/v1/tradeOrders", params=params)).status_code == 400
    assert (await api.get("/api/v1/executions", params=params)).status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/tradeOrders/999999", "/api/v1/executions/999999"])
async def test_missing_rows_are_404(api: httpx.AsyncClient, path: str) -> None:
    assert (await api.get(path)).status_code == 404


async def test_an_id_out_of_integer_range_is_400_not_500(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/tradeOrders/99999999999")).status_code == 400


async def test_submit_without_sending_reserves_the_quantity(api: httpx.AsyncClient) -> None:
    (order,) = await create_orders(api, 1, quantity=100, limitPrice=10.125)
    r = await api.post(
        f"/api/v1/tradeOrders/{order['id']}/submit",
        params={"noExecuteSubmit": "true"},
        json={"quantity": 40, "destinationId": 3},
    )
    execution = r.json()
    assert r.status_code == 201
    assert set(execution) >= EXECUTION_FIELDS
    assert execution["executionStatus"]["abbreviation"] == "NEW"
    assert execution["tradeType"]["abbreviation"] == "BUY"
    assert execution["destination"]["abbreviation"] == "JPM"
    assert execution["blotter"]["abbreviation"] == "EQ"
    assert (
        execution["quantityOrdered"],
        execution["quantityPlaced"],
        execution["quantityFilled"],
    ) == ("40.00", "0.00", "0.00")
    assert execution["limitPrice"] == "10.13"
    assert (execution["version"], execution["executionServiceId"]) == (1, None)
    nested = execution["tradeOrder"]
    assert (nested["quantitySent"], nested["submitted"], nested["version"]) == (40, False, 2)

    second = await api.post(
        f"/api/v1/tradeOrders/{order['id']}/submit",
        params={"noExecuteSubmit": "true"},
        json={"quantity": 60, "destinationId": 1},
    )
    assert second.json()["tradeOrder"]["submitted"] is True
    assert second.json()["tradeOrder"]["quantitySent"] == 100


@pytest.mark.parametrize(
    ("order_id", "body", "status", "field"),
    [
        (None, {"quantity": 101, "destinationId": 1}, 400, "quantity"),
        (None, {"quantity": 0, "destinationId": 1}, 400, "quantity"),
        (None, {"quantity": 10, "destinationId": 42}, 400, "destinationId"),
        (None, {"quantity": 10}, 400, "destinationId"),
        (987654, {"quantity": 10, "destinationId": 1}, 404, None),
    ],
)
async def test_refused_submissions_change_nothing(
    api: httpx.AsyncClient,
    order_id: int | None,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    (order,) = await create_orders(api, 1, quantity=100)
    target = order_id or order["id"]
    r = await api.post(
        f"/api/v1/tradeOrders/{target}/submit", params={"noExecuteSubmit": "true"}, json=body
    )
    assert r.status_code == status, r.text
    assert r.json()["error"] and r.json()["message"]
    if field:
        assert field in r.json()["validationErrors"]
    assert (await api.get(f"/api/v1/tradeOrders/{order['id']}")).json() == order


async def test_create_execution_directly_counts_against_the_order(api: httpx.AsyncClient) -> None:
    (order,) = await create_orders(api, 1, quantity=50)
    body = {
        "executionStatusId": 1,
        "tradeTypeId": 2,
        "tradeOrderId": order["id"],
        "destinationId": 4,
        "quantityOrdered": 30,
        "limitPrice": 9.999,
    }
    r = await api.post("/api/v1/executions", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["limitPrice"] == "10.00"
    assert r.json()["tradeOrder"]["quantitySent"] == 30
    too_much = await api.post("/api/v1/executions", json={**body, "quantityOrdered": 21})
    assert too_much.status_code == 400 and "quantityOrdered" in too_much.json()["validationErrors"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tradeOrderId": 999999}, "tradeOrderId"),
        ({"executionStatusId": 11}, "executionStatusId"),
        ({"destinationId": 0}, "destinationId"),
        ({"quantityPlaced": 20}, "body"),
        ({"quantityFilled": 1}, "body"),
    ],
)
async def test_bad_executions_are_400(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    (order,) = await create_orders(api, 1, quantity=50)
    body = {
        "executionStatusId": 1,
        "tradeOrderId": order["id"],
        "destinationId": 1,
        "quantityOrdered": 10,
    }
    r = await api.post("/api/v1/executions", json={**body, **change})
    assert r.status_code == 400, r.text
    assert field in r.json()["validationErrors"]


async def test_execution_list_pages_with_x_total_count(api: httpx.AsyncClient) -> None:
    await create_executions(api, 2)
    r = await api.get("/api/v1/executions", params={"limit": 1})
    assert int(r.headers["X-Total-Count"]) >= 2 and len(r.json()) == 1
    assert set(r.json()[0]) >= EXECUTION_FIELDS


@pytest.mark.parametrize(
    "body",
    [
        {"submissions": []},
        {"submissions": [{"tradeOrderId": 1, "quantity": 1, "destinationId": 1}] * 2},
        {
            "submissions": [
                {"tradeOrderId": i, "quantity": 1, "destinationId": 1} for i in range(1, 102)
            ]
        },
        {"submissions": [{"tradeOrderId": 1, "quantity": 0, "destinationId": 1}]},
        {"submissions": [{"tradeOrderId": 1, "destinationId": 1}]},
        {"submissions": "many"},
        {},
    ],
)
async def test_invalid_batch_requests_are_400_and_change_nothing(
    api: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    before = (await api.get("/api/v1/executions", params={"limit": 1})).headers["X-Total-Count"]
    r = await api.post("/api/v1/tradeOrders/batch/submit", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["validationErrors"]
    assert (await api.get("/api/v1/executions", params={"limit": 1})).headers[
        "X-Total-Count"
    ] == before


async def test_batch_marks_each_refused_item_and_answers_207(api: httpx.AsyncClient) -> None:
    fresh, small, done = await create_orders(api, 3, quantity=10)
    await api.post(
        f"/api/v1/tradeOrders/{done['id']}/submit",
        params={"noExecuteSubmit": "true"},
        json={"quantity": 10, "destinationId": 1},
    )
    submissions = [
        {"tradeOrderId": fresh["id"], "quantity": 10, "destinationId": 2},
        {"tradeOrderId": 999999, "quantity": 1, "destinationId": 1},
        {"tradeOrderId": done["id"], "quantity": 1, "destinationId": 1},
        {"tradeOrderId": small["id"], "quantity": 11, "destinationId": 1},
    ]
    r = await api.post(
        "/api/v1/tradeOrders/batch/submit",
        params={"noExecuteSubmit": "true"},
        json={"submissions": submissions},
    )
    body = r.json()
    assert r.status_code == 207
    assert (body["status"], body["message"]) == (
        "PARTIAL",
        "1 of 4 trade orders submitted successfully",
    )
    assert (body["totalRequested"], body["successful"], body["failed"]) == (4, 1, 3)
    assert [(x["requestIndex"], x["tradeOrderId"], x["status"]) for x in body["results"]] == [
        (0, fresh["id"], "SUCCESS"),
        (1, 999999, "FAILURE"),
        (2, done["id"], "FAILURE"),
        (3, small["id"], "FAILURE"),
    ]
    assert [x["message"] for x in body["results"][1:3]] == [
        "Trade order not found",
        "Trade order is already submitted",
    ]
    assert "exceeds the unsent quantity" in body["results"][3]["message"]
    assert body["results"][0]["execution"]["destination"]["abbreviation"] == "RBC"
    assert body["results"][1]["execution"] is None
    assert (await api.get(f"/api/v1/tradeOrders/{small['id']}")).json() == small


async def test_a_batch_where_everything_fails_is_200_failure(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/api/v1/tradeOrders/batch/submit",
        json={"submissions": [{"tradeOrderId": 999998, "quantity": 1, "destinationId": 1}]},
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["message"]) == (
        "FAILURE",
        "All 1 trade orders failed to submit",
    )


async def test_health_probes_and_metrics(api: httpx.AsyncClient) -> None:
    for probe in ("liveness", "readiness", "startup"):
        r = await api.get(f"/api/v1/health/{probe}")
        assert (r.status_code, r.json()) == (200, {"status": "UP"})
    assert (await api.get("/actuator/health/readiness")).json()["status"] == "UP"
    metrics = (await api.get("/actuator/prometheus")).text
    assert "trade_execution_batch_size" in metrics
