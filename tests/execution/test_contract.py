"""Every response against the reference's field lists (globeco-contracts.md part A),
on SQLite and PostgreSQL, with the original's bugs fixed (section C)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.execution.factories import (
    BATCH_RESPONSE_FIELDS,
    ERROR_FIELDS,
    EXECUTION_DTO_FIELDS,
    PAGE_FIELDS,
    PAGINATION_FIELDS,
    RESULT_FIELDS,
    SECURITY,
    SECURITY_FIELDS,
    item,
)
from tests.execution.harness import Harness
from tests.fixtures.waiting import consume
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def assert_dto(dto: dict[str, Any]) -> None:
    assert set(dto) == EXECUTION_DTO_FIELDS
    assert set(dto["security"]) == SECURITY_FIELDS
    assert dto["security"]["securityId"] == dto["securityId"]
    assert dto["security"]["ticker"] == dto["ticker"]
    assert isinstance(dto["id"], int)
    assert isinstance(dto["version"], int)
    for number in ("quantity", "quantityFilled"):
        assert isinstance(dto[number], (int, float))
    datetime.fromisoformat(dto["receivedTimestamp"])
    assert dto["receivedTimestamp"].endswith("Z")


async def test_create_one_returns_the_dto_with_the_stored_version(any_app: Harness) -> None:
    body = item(quantity=Decimal("1234567890.12345678"), limitPrice=Decimal("0.00000001"))
    r = await any_app.post("/api/v1/executions", body)
    assert r.status_code == 201
    dto = r.json()
    assert_dto(dto)
    assert r.headers["location"] == f"/api/v1/execution/{dto['id']}"
    # Exact decimals survive the round trip, digit for digit.
    assert '"quantity":1234567890.12345678' in r.text
    assert dto["quantityFilled"] == 0
    assert dto["averagePrice"] is None
    assert dto["version"] == 1
    assert dto["sentTimestamp"] is not None  # the broker acknowledged within publish-wait
    again = await any_app.client.get(f"/api/v1/execution/{dto['id']}")
    assert again.status_code == 200
    assert again.json() == dto


async def test_orders_event_carries_the_sent_timestamp_of_the_row(
    any_app: Harness, broker: EmbeddedBroker
) -> None:
    r = await any_app.post("/api/v1/executions", item(quantity=7))
    assert r.status_code == 201
    created = r.json()
    # The module's topic holds one event per execution created so far (this one included).
    records = await consume(broker.bootstrap_servers, any_app.topic, await any_app.count())
    key = str(created["id"]).encode()
    (event,) = [orjson.loads(rec.value) for rec in records if rec.key == key]
    fetched = (await any_app.client.get(f"/api/v1/execution/{created['id']}")).json()
    assert event["sentTimestamp"] is not None
    assert event["sentTimestamp"] == fetched["sentTimestamp"] == created["sentTimestamp"]
    assert event == fetched


async def test_batch_response_shape_and_status_codes(any_app: Harness) -> None:
    ok = await any_app.post("/api/v1/executions/batch", {"executions": [item(), item()]})
    assert ok.status_code == 201
    body = ok.json()
    assert set(body) == BATCH_RESPONSE_FIELDS
    assert body["status"] == "SUCCESS"
    assert body["message"] == "All executions created successfully"
    assert (body["totalRequested"], body["successful"], body["failed"]) == (2, 2, 0)
    for i, result in enumerate(body["results"]):
        assert set(result) == RESULT_FIELDS
        assert result["requestIndex"] == i
        assert result["status"] == "SUCCESS"
        assert result["message"] is None
        assert_dto(result["execution"])
        # The original returned version 1 below the database's (C4) and faked tickers (C6).
        stored = await any_app.client.get(f"/api/v1/execution/{result['execution']['id']}")
        assert stored.json()["version"] == result["execution"]["version"] == 1
        assert result["execution"]["averagePrice"] is None

    mixed = await any_app.post(
        "/api/v1/executions/batch", {"executions": [item(), item(quantity=-1), item()]}
    )
    assert mixed.status_code == 207
    body = mixed.json()
    assert body["status"] == "PARTIAL_SUCCESS"
    assert body["message"] == "2 of 3 executions created successfully"
    assert body["results"][1] == {
        "requestIndex": 1,
        "status": "FAILED",
        "message": "Quantity must be greater than zero",
        "execution": None,
    }

    bad = await any_app.post("/api/v1/executions/batch", {"executions": [item(tradeType="X")]})
    assert bad.status_code == 400
    assert bad.json()["status"] == "FAILED"
    assert bad.json()["message"] == "All executions failed"


async def test_trade_service_codes_are_accepted(any_app: Harness) -> None:
    """C1/C2: SHORT, COVER, EXRC and the trade service's status codes interoperate."""
    items = [
        item(tradeType=t, executionStatus=s)
        for t, s in [("SHORT", "NEW"), ("COVER", "SENT"), ("EXRC", "WORK"), ("BUY", "PENDING")]
    ]
    r = await any_app.post("/api/v1/executions/batch", {"executions": items})
    assert r.status_code == 201, r.text


async def test_request_level_batch_errors_use_the_error_body(any_app: Harness) -> None:
    cases = [
        ({"executions": None}, "Executions list cannot be null"),
        ({}, "Executions list cannot be null"),
        ({"executions": []}, "Executions list cannot be empty"),
        ({"executions": [item()] * 101}, "Maximum 100 executions allowed per batch"),
        ({"executions": "x"}, "Executions must be a list"),
        ([1], "Request body must be a JSON object"),
    ]
    for body, message in cases:
        r = await any_app.post("/api/v1/executions/batch", body)
        assert r.status_code == 400, body
        assert set(r.json()) == ERROR_FIELDS
        assert message in r.json()["message"]


async def test_page_shape_pagination_and_default_order(any_app: Harness) -> None:
    await any_app.post("/api/v1/executions/batch", {"executions": [item() for _ in range(3)]})
    r = await any_app.client.get("/api/v1/executions", params={"offset": 1, "limit": 2})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == PAGE_FIELDS
    assert set(body["pagination"]) == PAGINATION_FIELDS
    total = body["pagination"]["totalElements"]
    assert body["pagination"] == {
        "offset": 1,
        "limit": 2,
        "totalElements": total,
        "totalPages": (total + 1) // 2,
        "currentPage": 0,
        "hasNext": total > 3,
        "hasPrevious": True,
    }
    ids = [e["id"] for e in body["content"]]
    assert ids == sorted(ids)  # default sortBy=id, ascending (C11)
    for dto in body["content"]:
        assert_dto(dto)


async def test_get_unknown_is_404_and_bad_id_is_400(any_app: Harness) -> None:
    r = await any_app.client.get("/api/v1/execution/99999999")
    assert r.status_code == 404
    assert set(r.json()) == ERROR_FIELDS
    r = await any_app.client.get("/api/v1/execution/abc")
    assert r.status_code == 400
    assert "execution_id" in r.json()["validationErrors"]


async def test_fill_contract(any_app: Harness) -> None:
    created = (await any_app.post("/api/v1/executions", item(quantity=100))).json()
    path = f"/api/v1/execution/{created['id']}"
    part = await any_app.put(path, {"quantityFilled": 40, "averagePrice": 25.1, "version": 1})
    assert part.status_code == 200
    assert_dto(part.json())
    assert part.json()["executionStatus"] == "PART"
    assert part.json()["version"] == 2
    assert part.json()["averagePrice"] == 25.1
    stale = await any_app.put(path, {"quantityFilled": 100, "averagePrice": 25.1, "version": 1})
    assert stale.status_code == 409  # C5: a stale version was 500
    assert stale.json()["currentVersion"] == 2
    full = await any_app.put(path, {"quantityFilled": 100, "averagePrice": 25.2, "version": 2})
    assert full.json()["executionStatus"] == "FULL"
    assert full.json()["quantityFilled"] == 100
    over = await any_app.put(path, {"quantityFilled": 101, "averagePrice": 1, "version": 3})
    assert over.status_code == 400
    assert "quantityFilled" in over.json()["validationErrors"]
    negative = await any_app.put(path, {"quantityFilled": -1, "averagePrice": 1, "version": 3})
    assert negative.status_code == 400
    assert "quantityFilled" in negative.json()["validationErrors"]
    missing = await any_app.put("/api/v1/execution/99999999", {"quantityFilled": 1, "version": 1})
    assert missing.status_code == 404
    no_version = await any_app.put(path, {"quantityFilled": 1})
    assert no_version.status_code == 400
    assert "version" in no_version.json()["validationErrors"]
    assert (await any_app.client.get(path)).json()["version"] == 3


async def test_security_id_is_returned_without_padding(any_app: Harness) -> None:
    """security_id is char(24): PostgreSQL pads shorter ids; the API never shows the blanks."""
    r = await any_app.post("/api/v1/executions", item(securityId="SHORTID"))
    dto = r.json()
    assert dto["securityId"] == "SHORTID"
    assert (await any_app.client.get(f"/api/v1/execution/{dto['id']}")).json()[
        "securityId"
    ] == "SHORTID"
    assert SECURITY  # the default used elsewhere is a full 24-character id
