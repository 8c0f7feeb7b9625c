"""Bulk submission through the trade API against a scripted execution-service batch endpoint:
batching, concurrency, per-item outcomes, individual retries, and what a refusal leaves behind.
The real execution service is exercised in test_end_to_end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.trade.factories import (
    ScriptedExecutionService,
    batch_response,
    create_executions,
    create_orders,
    trade_app,
)
from tranche.trade.settings import TradeSettings

pytestmark = pytest.mark.postgres

Items = list[dict[str, Any]]


def accepting(service_ref: list[ScriptedExecutionService], delay: float = 0.0) -> Any:
    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        if delay:
            await asyncio.sleep(delay)
        return batch_response([service_ref[0].result(i, it) for i, it in enumerate(items)])

    return handler


def service_with(
    handler_factory: Callable[[list[ScriptedExecutionService]], Any],
) -> ScriptedExecutionService:
    ref: list[ScriptedExecutionService] = []
    service = ScriptedExecutionService(handler_factory(ref))
    ref.append(service)
    return service


@asynccontextmanager
async def app_with(
    url: str, service: ScriptedExecutionService, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    async with trade_app(url, service.transport(), **settings) as client:
        yield client


async def batch_submit(
    client: httpx.AsyncClient, orders: list[dict[str, Any]], **params: Any
) -> httpx.Response:
    submissions = [
        {"tradeOrderId": o["id"], "quantity": o["quantity"], "destinationId": 1} for o in orders
    ]
    return await client.post(
        "/api/v1/tradeOrders/batch/submit", params=params, json={"submissions": submissions}
    )


async def test_a_hundred_submissions_go_out_in_batches_of_the_configured_size(
    trade_pg_url: str,
) -> None:
    service = service_with(accepting)
    async with app_with(trade_pg_url, service, execution_service_batch_size=30) as client:
        orders = await create_orders(client, 100, orderType="SELL", limitPrice=None)
        r = await batch_submit(client, orders)
        body = r.json()
        assert (r.status_code, body["status"], body["successful"]) == (200, "SUCCESS", 100)
        assert sorted(service.sizes()) == [10, 30, 30, 30]
        assert len(set(service.keys())) == 4
        sent = [json.loads(rq.content)["executions"] for rq in service.requests]
        ours = {x["execution"]["id"] for x in body["results"]}
        assert {e["tradeServiceExecutionId"] for batch in sent for e in batch} == ours
        first = body["results"][0]["execution"]
        assert first["executionStatus"]["abbreviation"] == "SENT"
        assert first["executionServiceId"] is not None
        assert first["quantityPlaced"] == first["quantityOrdered"] == "100.00"
        assert first["version"] == 2
        assert first["tradeOrder"]["quantitySent"] == 100 and first["tradeOrder"]["submitted"]
        metrics = (await client.get("/actuator/prometheus")).text
        assert 'trade_execution_batches_total{outcome="201"} 4.0' in metrics
        assert 'trade_execution_items_total{result="success"} 100.0' in metrics


async def test_the_post_dto_is_mapped_as_the_reference(trade_pg_url: str) -> None:
    service = service_with(accepting)
    async with app_with(trade_pg_url, service) as client:
        (order,) = await create_orders(client, 1, orderType="COVER", quantity=75, limitPrice=3.5)
        r = await client.post(
            f"/api/v1/tradeOrders/{order['id']}/submit", json={"quantity": 25, "destinationId": 5}
        )
        assert r.status_code == 201, r.text
        (sent,) = json.loads(service.requests[0].content)["executions"]
        assert sent == {
            "executionStatus": "NEW",
            "tradeType": "COVER",
            "destination": "INST",
            "securityId": order["securityId"],
            "quantity": 25.0,
            "limitPrice": 3.5,
            "tradeServiceExecutionId": r.json()["id"],
            "version": 1,
        }


async def test_without_batching_every_execution_is_its_own_request(trade_pg_url: str) -> None:
    service = service_with(accepting)
    async with app_with(trade_pg_url, service, execution_service_enable_batching=False) as client:
        orders = await create_orders(client, 5)
        assert (await batch_submit(client, orders)).json()["successful"] == 5
        assert service.sizes() == [1] * 5


async def test_no_more_than_max_in_flight_batches_are_on_the_wire(trade_pg_url: str) -> None:
    in_flight = peak = 0
    ref: list[ScriptedExecutionService] = []

    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return batch_response([ref[0].result(i, it) for i, it in enumerate(items)])

    service = ScriptedExecutionService(handler)
    ref.append(service)
    async with app_with(
        trade_pg_url, service, execution_service_batch_size=5, execution_service_max_in_flight=3
    ) as client:
        orders = await create_orders(client, 40)
        assert (await batch_submit(client, orders)).json()["successful"] == 40
    assert len(service.requests) == 8
    assert peak == 3


async def test_207_marks_the_refused_items_and_restores_their_orders(trade_pg_url: str) -> None:
    ref: list[ScriptedExecutionService] = []

    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        results = [
            ref[0].result(i, it, ok=it["quantity"] != 13, message="securityId is not tradable")
            for i, it in enumerate(items)
        ]
        return batch_response(results)

    service = ScriptedExecutionService(handler)
    ref.append(service)
    async with app_with(trade_pg_url, service) as client:
        good = await create_orders(client, 2, quantity=10)
        (bad,) = await create_orders(client, 1, quantity=13)
        r = await batch_submit(client, [good[0], bad, good[1]])
        body = r.json()
        assert (r.status_code, body["status"], body["successful"], body["failed"]) == (
            207,
            "PARTIAL",
            2,
            1,
        )
        assert [x["status"] for x in body["results"]] == ["SUCCESS", "FAILURE", "SUCCESS"]
        assert (
            body["results"][1]["message"]
            == "Execution submission failed: securityId is not tradable"
        )
        assert body["results"][1]["execution"] is None
        assert (await client.get(f"/api/v1/tradeOrders/{bad['id']}")).json() == bad
        executions = (await client.get("/api/v1/executions")).json()
        assert bad["id"] not in {e["tradeOrder"]["id"] for e in executions}


async def test_transient_item_failures_are_resent_alone_with_a_new_key(trade_pg_url: str) -> None:
    ref: list[ScriptedExecutionService] = []
    failures_left = {"n": 2}

    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        results = []
        for i, it in enumerate(items):
            flaky = it["quantity"] == 7 and failures_left["n"] > 0
            if flaky:
                failures_left["n"] -= 1
            results.append(
                ref[0].result(i, it, ok=not flaky, message="Database error: connection reset")
            )
        return batch_response(results)

    service = ScriptedExecutionService(handler)
    ref.append(service)
    async with app_with(trade_pg_url, service) as client:
        orders = await create_orders(client, 3, quantity=5) + await create_orders(
            client, 1, quantity=7
        )
        body = (await batch_submit(client, orders)).json()
        assert body["status"] == "SUCCESS"
        assert service.sizes() == [4, 1, 1]
        assert len(set(service.keys())) == 3
        assert "trade_execution_item_retries_total 2.0" in (await client.get("/metrics")).text


async def test_items_that_keep_failing_transiently_are_retry_exhausted(trade_pg_url: str) -> None:
    ref: list[ScriptedExecutionService] = []

    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        return batch_response(
            [
                ref[0].result(
                    i, it, ok=it["quantity"] != 7, message="Temporary failure in the database"
                )
                for i, it in enumerate(items)
            ]
        )

    service = ScriptedExecutionService(handler)
    ref.append(service)
    async with app_with(
        trade_pg_url, service, execution_service_retry_failed_individually=3
    ) as client:
        (ok,) = await create_orders(client, 1, quantity=5)
        (flaky,) = await create_orders(client, 1, quantity=7)
        body = (await batch_submit(client, [ok, flaky])).json()
        assert service.sizes() == [2, 1, 1, 1]
        assert body["results"][1]["message"] == (
            "Execution submission failed: RETRY_EXHAUSTED: Temporary failure in the database"
        )
        assert (await client.get(f"/api/v1/tradeOrders/{flaky['id']}")).json() == flaky


async def test_an_unreachable_service_fails_the_batch_once_without_individual_resends(
    trade_pg_url: str,
) -> None:
    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        return httpx.Response(503, json={"message": "down"})

    service = ScriptedExecutionService(handler)
    async with app_with(trade_pg_url, service, execution_service_retry_max_attempts=4) as client:
        orders = await create_orders(client, 3)
        body = (await batch_submit(client, orders)).json()
        assert body["status"] == "FAILURE"
        assert len(service.requests) == 4 and len(set(service.keys())) == 1
        assert all("RETRY_EXHAUSTED" in x["message"] for x in body["results"])
        for order in orders:
            assert (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json() == order


@pytest.mark.parametrize(
    ("answer", "status", "prefix"),
    [
        (
            httpx.Response(400, json={"message": "tradeType is required"}),
            400,
            "Client error 400: tradeType is required",
        ),
        (
            httpx.Response(503, json={"message": "down"}),
            502,
            "Execution service unavailable: RETRY_EXHAUSTED",
        ),
    ],
)
async def test_a_refused_single_submission_leaves_the_order_exactly_as_before(
    trade_sqlite_url: str, answer: httpx.Response, status: int, prefix: str
) -> None:
    async def handler(request: httpx.Request, items: Items) -> httpx.Response:
        return httpx.Response(answer.status_code, content=answer.content)

    service = ScriptedExecutionService(handler)
    async with app_with(
        trade_sqlite_url, service, execution_service_retry_max_attempts=2
    ) as client:
        (order,) = await create_orders(client, 1, quantity=100)
        r = await client.post(
            f"/api/v1/tradeOrders/{order['id']}/submit", json={"quantity": 60, "destinationId": 2}
        )
        assert r.status_code == status
        assert r.json()["error"].startswith(prefix)
        assert (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json() == order
        assert (await client.get("/api/v1/executions")).json() == []


async def test_submitting_an_existing_execution(trade_sqlite_url: str) -> None:
    service = service_with(accepting)
    async with app_with(trade_sqlite_url, service) as client:
        (execution,) = await create_executions(client, 1)
        r = await client.post(f"/api/v1/execution/{execution['id']}/submit")
        assert r.status_code == 200, r.text
        assert r.json()["executionStatus"]["abbreviation"] == "SENT"
        again = await client.post(f"/api/v1/execution/{execution['id']}/submit")
        assert again.status_code == 409 and "already submitted" in again.json()["error"]
        missing = await client.post("/api/v1/execution/987654/submit")
        assert (missing.status_code, missing.json()["error"]) == (
            404,
            "Execution not found: 987654",
        )
        assert len(service.requests) == 1


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_concurrent_submissions_of_one_execution_send_it_once(
    database: str, trade_sqlite_url: str, trade_pg_url: str
) -> None:
    service = service_with(lambda ref: accepting(ref, delay=0.05))
    url = trade_sqlite_url if database == "sqlite" else trade_pg_url
    async with app_with(url, service) as client:
        (execution,) = await create_executions(client, 1)
        answers = await asyncio.gather(
            *(client.post(f"/api/v1/execution/{execution['id']}/submit") for _ in range(4))
        )
        assert sorted(a.status_code for a in answers) == [200, 409, 409, 409]
        assert len(service.requests) == 1


async def test_settings_adjust_the_batch_size() -> None:
    def size(**values: Any) -> int:
        return TradeSettings(**values).effective_batch_size

    assert size() == 50
    assert size(execution_service_batch_size=500) == 100
    assert size(execution_service_batch_size=0) == 50
    assert size(execution_service_batch_size=-3, execution_service_max_size=20) == 20
    assert size(execution_service_batch_size=80, execution_service_enable_batching=False) == 1


def test_settings_come_from_trade_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADE_EXECUTION_SERVICE_BATCH_SIZE", "25")
    monkeypatch.setenv("TRADE_EXECUTION_SERVICE_MAX_IN_FLIGHT", "2")
    monkeypatch.setenv("TRADE_EXECUTION_SERVICE_ENABLE_BATCHING", "false")
    monkeypatch.setenv("TRADE_EXECUTION_SERVICE_RETRY_FAILED_INDIVIDUALLY", "1")
    settings = TradeSettings()
    assert (settings.execution_service_batch_size, settings.execution_service_max_in_flight) == (
        25,
        2,
    )
    assert settings.effective_batch_size == 1
    assert settings.execution_service_retry_failed_individually == 1
    assert settings.port == 8082
