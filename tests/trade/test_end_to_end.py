"""The trade service submitting to the real execution service on PostgreSQL, in process
(ASGI) and over loopback (uvicorn): success, per-item refusals, outages, a lost answer,
a refused batch, and a fill coming back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import DatabaseFactory
from tests.fixtures.waiting import eventually
from tests.trade.factories import create_orders, order_payload
from tests.trade.peers import Peers, peers
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture(scope="module", params=["asgi", "loopback"])
async def env(
    request: pytest.FixtureRequest,
    postgres_factory: DatabaseFactory,
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Peers]:
    data_dir: Path = tmp_path_factory.mktemp(f"peers-{request.param}")
    async with peers(request.param, postgres_factory, broker.bootstrap_servers, data_dir) as p:
        yield p


@pytest.fixture
def wired(env: Peers) -> Peers:
    env.faults.reset()
    return env


async def submit(p: Peers, orders: list[dict[str, Any]]) -> httpx.Response:
    submissions = [
        {"tradeOrderId": o["id"], "quantity": o["quantity"], "destinationId": 2} for o in orders
    ]
    return await p.trade.post("/api/v1/tradeOrders/batch/submit", json={"submissions": submissions})


async def assert_created_once(p: Peers, results: list[dict[str, Any]]) -> None:
    """Each sent execution exists exactly once at the execution service, under our id."""
    ours = {r["execution"]["id"]: r["execution"]["executionServiceId"] for r in results}
    rows = await p.execution_rows(list(ours))
    assert {k: len(v) for k, v in rows.items()} == dict.fromkeys(ours, 1)
    assert {k: v[0] for k, v in rows.items()} == ours


async def test_all_succeed(wired: Peers) -> None:
    orders = await create_orders(wired.trade, 30, orderType="SELL")
    r = await submit(wired, orders)
    body = r.json()
    assert (r.status_code, body["status"], body["successful"]) == (200, "SUCCESS", 30)
    await assert_created_once(wired, body["results"])
    execution = body["results"][0]["execution"]
    assert execution["executionStatus"]["abbreviation"] == "SENT"
    assert execution["quantityPlaced"] == execution["quantityOrdered"]
    theirs = (
        await wired.execution.get(f"/api/v1/execution/{execution['executionServiceId']}")
    ).json()
    assert theirs["tradeServiceExecutionId"] == execution["id"]
    assert (theirs["tradeType"], theirs["destination"]) == ("SELL", "RBC")
    assert Decimal(str(theirs["quantity"])) == Decimal(execution["quantityOrdered"])


async def test_refused_items_are_marked_in_a_207(wired: Peers) -> None:
    good = await create_orders(wired.trade, 3, orderType="BUY")
    (bad,) = await create_orders(wired.trade, 1, orderType="EXRC")
    r = await submit(wired, [good[0], bad, good[1], good[2]])
    body = r.json()
    assert (r.status_code, body["status"]) == (207, "PARTIAL")
    assert [x["status"] for x in body["results"]] == ["SUCCESS", "FAILURE", "SUCCESS", "SUCCESS"]
    assert "Invalid trade type" in body["results"][1]["message"]
    await assert_created_once(wired, [x for x in body["results"] if x["status"] == "SUCCESS"])
    assert (await wired.trade.get(f"/api/v1/tradeOrders/{bad['id']}")).json() == bad


async def test_503_twice_then_201_creates_every_execution_once(wired: Peers) -> None:
    orders = await create_orders(wired.trade, 20)
    wired.faults.fail_next = 2
    body = (await submit(wired, orders)).json()
    assert body["status"] == "SUCCESS"
    assert len(wired.faults.keys) == 3 and len(set(wired.faults.keys)) == 1
    await assert_created_once(wired, body["results"])


async def test_an_answer_lost_after_commit_is_replayed_not_duplicated(wired: Peers) -> None:
    orders = await create_orders(wired.trade, 10)
    wired.faults.stall_next = 1
    body = (await submit(wired, orders)).json()
    assert body["status"] == "SUCCESS"
    assert len(wired.faults.keys) == 2 and len(set(wired.faults.keys)) == 1
    await assert_created_once(wired, body["results"])


async def test_a_400_is_not_retried_and_changes_nothing(wired: Peers) -> None:
    orders = await create_orders(wired.trade, 3, orderType="EXRC")
    r = await submit(wired, orders)
    body = r.json()
    assert (r.status_code, body["status"]) == (200, "FAILURE")
    assert len(wired.faults.keys) == 1
    for order in orders:
        assert (await wired.trade.get(f"/api/v1/tradeOrders/{order['id']}")).json() == order


async def test_single_submission_is_a_batch_of_one(wired: Peers) -> None:
    (order,) = await create_orders(wired.trade, 1, quantity=500)
    r = await wired.trade.post(
        f"/api/v1/tradeOrders/{order['id']}/submit", json={"quantity": 200, "destinationId": 3}
    )
    assert r.status_code == 201, r.text
    assert r.json()["executionStatus"]["abbreviation"] == "SENT"
    assert len(wired.faults.keys) == 1
    rows = await wired.execution_rows([r.json()["id"]])
    assert rows == {r.json()["id"]: [r.json()["executionServiceId"]]}


@pytest.mark.parametrize("literal", ["9999999999.99999999", "1234567890.12345678"])
async def test_extreme_decimals_are_accepted_by_the_execution_service(
    wired: Peers, literal: str
) -> None:
    # Sent as JSON text: a float would make 9999999999.99999999 1e10, which the
    # execution service refuses (more than ten integer digits).
    order = json.dumps(order_payload(quantity=0, limitPrice=0))
    order = order.replace('"quantity": 0', f'"quantity": {literal}')
    order = order.replace('"limitPrice": 0', f'"limitPrice": {literal}')
    created = await wired.trade.post("/api/v1/tradeOrders", content=order, headers=JSON_TYPE)
    assert created.status_code == 201, created.text
    r = await wired.trade.post(
        f"/api/v1/tradeOrders/{created.json()['id']}/submit",
        content=f'{{"quantity": {literal}, "destinationId": 1}}',
        headers=JSON_TYPE,
    )
    assert r.status_code == 201, r.text
    service_id = r.json()["executionServiceId"]
    theirs = await wired.execution.get(f"/api/v1/execution/{service_id}")
    exact = json.loads(theirs.content, parse_float=Decimal)
    assert (exact["quantity"], exact["limitPrice"]) == (Decimal(literal), Decimal(literal))
    assert exact["tradeServiceExecutionId"] == r.json()["id"]


async def test_a_fill_at_the_execution_service_reaches_the_trade_execution(wired: Peers) -> None:
    (order,) = await create_orders(wired.trade, 1, quantity=300)
    sent = (
        await wired.trade.post(
            f"/api/v1/tradeOrders/{order['id']}/submit", json={"quantity": 300, "destinationId": 1}
        )
    ).json()
    theirs = (await wired.execution.get(f"/api/v1/execution/{sent['executionServiceId']}")).json()
    put = await wired.execution.put(
        f"/api/v1/execution/{theirs['id']}",
        json={"quantityFilled": 120, "averagePrice": 10.5, "version": theirs["version"]},
    )
    assert put.status_code == 200, put.text

    async def filled() -> dict[str, Any] | None:
        got: dict[str, Any] = (await wired.trade.get(f"/api/v1/executions/{sent['id']}")).json()
        return got if got["quantityFilled"] != "0.00" else None

    ours: dict[str, Any] = await eventually(filled, 60, "the fill to reach the trade service")
    assert (ours["executionStatus"]["abbreviation"], ours["quantityFilled"]) == ("PART", "120.00")
    assert ours["averagePrice"] == "10.50"
    assert ours["version"] == sent["version"] + 1
