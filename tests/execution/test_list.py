"""GET /api/v1/executions: one filter semantics (exact, case-insensitive, comma = any of),
sorting over the reference's fields, plain offset/limit paging (reference C11 fixed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.execution.factories import item
from tests.execution.harness import Harness

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

ROWS = [
    ("NEW", "BUY", "ML", "AAA", 300),
    ("NEW", "SELL", "RBC", "BBB", 100),
    ("PART", "BUY", "ml", "CCC", 200),
    ("FULL", "SHORT", "JPM", "AAA", 500),
    ("NEW", "COVER", "MLX", "DDD", 400),
]


@pytest.fixture(scope="module")
async def seeded(any_app: Harness) -> list[dict[str, Any]]:
    items = [
        item(executionStatus=s, tradeType=t, destination=d, securityId=sec, quantity=q)
        for s, t, d, sec, q in ROWS
    ]
    r = await any_app.post("/api/v1/executions/batch", {"executions": items})
    assert r.status_code == 201
    return [res["execution"] for res in r.json()["results"]]


async def ids(app: Harness, **params: Any) -> list[int]:
    r = await app.client.get("/api/v1/executions", params=params)
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()["content"]]


async def test_filters_are_exact_and_ignore_case(
    any_app: Harness, seeded: list[dict[str, Any]]
) -> None:
    i = [e["id"] for e in seeded]
    assert await ids(any_app, destination="ml") == [i[0], i[2]]  # not MLX: no substring match
    assert await ids(any_app, executionStatus="new") == [i[0], i[1], i[4]]
    assert await ids(any_app, tradeType="BUY") == [i[0], i[2]]
    assert await ids(any_app, tradeType="buy", destination="ML") == [i[0], i[2]]
    assert await ids(any_app, executionStatus="PART,full") == [i[2], i[3]]
    assert await ids(any_app, destination="NOWHERE") == []
    assert await ids(any_app, executionStatus="") == i  # an empty filter is no filter


async def test_sorting(any_app: Harness, seeded: list[dict[str, Any]]) -> None:
    i = [e["id"] for e in seeded]
    assert await ids(any_app, sortBy="-quantity") == [i[3], i[4], i[0], i[2], i[1]]
    assert await ids(any_app, sortBy="quantity") == [i[1], i[2], i[0], i[4], i[3]]
    # ticker sorts by security id (tickers live in the security service); ties by id.
    assert await ids(any_app, sortBy="ticker") == [i[0], i[3], i[1], i[2], i[4]]
    assert await ids(any_app, sortBy="-ticker,-id") == [i[4], i[2], i[1], i[3], i[0]]
    assert await ids(any_app, sortBy="executionStatus,-quantity") == [i[3], i[4], i[0], i[1], i[2]]
    assert await ids(any_app, sortBy=" tradeType , -quantity ") == [i[0], i[2], i[4], i[1], i[3]]
    assert await ids(any_app, sortBy="-id") == list(reversed(i))
    # One request: one receivedTimestamp. The relay may stamp its events in more than one
    # round (two workers can split a claim), so the order is that of the stored stamps.
    r = await any_app.client.get("/api/v1/executions", params={"limit": 100})
    stamps = {
        e["id"]: datetime.fromisoformat(e["sentTimestamp"]) if e["sentTimestamp"] else None
        for e in r.json()["content"]
    }
    by_sent = sorted(i, key=lambda n: (stamps[n] is None, stamps[n] or datetime.min, n))
    assert await ids(any_app, sortBy="receivedTimestamp,sentTimestamp") == by_sent


async def test_paging_uses_the_offset_as_given(
    any_app: Harness, seeded: list[dict[str, Any]]
) -> None:
    i = [e["id"] for e in seeded]
    r = await any_app.client.get("/api/v1/executions", params={"offset": 3, "limit": 2})
    body = r.json()
    assert [e["id"] for e in body["content"]] == i[3:5]
    assert body["pagination"] == {
        "offset": 3,
        "limit": 2,
        "totalElements": 5,
        "totalPages": 3,
        "currentPage": 1,
        "hasNext": False,
        "hasPrevious": True,
    }
    empty = (await any_app.client.get("/api/v1/executions", params={"offset": 50})).json()
    assert empty["content"] == []
    assert empty["pagination"]["hasNext"] is False
    filtered = (
        await any_app.client.get("/api/v1/executions", params={"destination": "ml", "limit": 1})
    ).json()
    assert filtered["pagination"]["totalElements"] == 2
    assert filtered["pagination"]["totalPages"] == 2
    assert filtered["pagination"]["hasNext"] is True
