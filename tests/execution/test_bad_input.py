"""Bad input → 400 naming the field, and nothing stored, nothing published."""

from __future__ import annotations

from typing import Any

import pytest

from tests.execution.factories import item
from tests.execution.harness import Harness

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

SINGLE_CASES: list[tuple[Any, str]] = [
    (item(quantity="lots"), "quantity"),
    (item(quantity=None), "quantity"),
    (item(quantity=True), "quantity"),
    (item(quantity=10**30), "quantity"),
    (item(quantity=1e308), "quantity"),
    (item(limitPrice="1,5"), "limitPrice"),
    (item(limitPrice=-0.01), "limitPrice"),
    (item(tradeType=None), "tradeType"),
    (item(tradeType=["BUY"]), "tradeType"),
    (item(executionStatus="N" * 21), "executionStatus"),
    (item(destination="D" * 10_000), "destination"),
    (item(securityId=12345), "securityId"),
    (item(securityId="S" * 25), "securityId"),
    (item(tradeServiceExecutionId=2**31), "tradeServiceExecutionId"),
    (item(tradeServiceExecutionId=1.5), "tradeServiceExecutionId"),
    (item(version=10**20), "version"),
    (None, "execution"),
    ("text", "execution"),
]


async def _stored_and_outbox(app: Harness) -> tuple[int, int]:
    return await app.count(), int(await app.scalar("SELECT count(*) FROM outbox"))


@pytest.mark.parametrize(("body", "field"), SINGLE_CASES)
async def test_single_create_rejects_and_stores_nothing(
    any_app: Harness, body: Any, field: str
) -> None:
    before = await _stored_and_outbox(any_app)
    r = await any_app.post("/api/v1/executions", body)
    assert r.status_code == 400, r.text
    assert field in r.json()["validationErrors"]
    assert await _stored_and_outbox(any_app) == before


async def test_malformed_json_is_400_naming_the_body(any_app: Harness) -> None:
    before = await _stored_and_outbox(any_app)
    for path in ("/api/v1/executions", "/api/v1/executions/batch"):
        for raw in (b'{"executions": [', b"", b"{'single': 'quotes'}", b'{"quantity": NaN}'):
            r = await any_app.client.post(
                path, content=raw, headers={"content-type": "application/json"}
            )
            assert r.status_code == 400, (path, raw)
            assert r.json()["validationErrors"] == {"body": "malformed JSON"}
    r = await any_app.client.put(
        "/api/v1/execution/1", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert await _stored_and_outbox(any_app) == before


async def test_batch_of_only_bad_items_is_400_and_names_each_field(any_app: Harness) -> None:
    before = await _stored_and_outbox(any_app)
    items = [body for body, _ in SINGLE_CASES]
    r = await any_app.post("/api/v1/executions/batch", {"executions": items})
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "FAILED"
    assert body["failed"] == len(items)
    labels = {
        "quantity": "Quantity",
        "limitPrice": "Limit price",
        "tradeType": "Trade type",
        "executionStatus": "Execution status",
        "destination": "Destination",
        "securityId": "Security ID",
        "tradeServiceExecutionId": "Trade service execution ID",
        "version": "Version",
        "execution": "Execution request",
    }
    for result, (_, field) in zip(body["results"], SINGLE_CASES, strict=True):
        assert result["message"].startswith(labels[field]), result
    assert await _stored_and_outbox(any_app) == before


async def test_bad_query_parameters_are_400(any_app: Harness) -> None:
    cases = [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"sortBy": "id,-nope,quantity,ticker,worse"}, "sortBy"),
    ]
    for params, field in cases:
        r = await any_app.client.get("/api/v1/executions", params=params)
        assert r.status_code == 400, params
        assert field in r.json()["validationErrors"]
    r = await any_app.client.get("/api/v1/executions", params={"sortBy": "-nope,worse"})
    assert "nope, worse" in r.json()["message"]


async def test_ticker_filter_without_a_security_service_is_400(any_app: Harness) -> None:
    r = await any_app.client.get("/api/v1/executions", params={"ticker": "IBM"})
    assert r.status_code == 400
    assert "EXECUTION_SECURITY_SERVICE_BASE_URL" in r.json()["message"]
