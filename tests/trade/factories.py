"""Test data and small harness pieces for the trade service's tests."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from tranche.trade.app import create_app
from tranche.trade.settings import TradeSettings

_order_ids = itertools.count(1)


def order_payload(**overrides: Any) -> dict[str, Any]:
    """A valid TradeOrderPostDTO with a fresh orderId."""
    n = next(_order_ids)
    body: dict[str, Any] = {
        "orderId": 100_000 + n,
        "portfolioId": "5f47ac10b8e5a5f2c9d3e1a0",
        "orderType": "BUY",
        "securityId": "5f47ac10b8e5a5f2c9d3e1b1",
        "quantity": 100,
        "limitPrice": 12.5,
        "tradeTimestamp": "2024-06-01T12:00:00Z",
        "blotterId": 2,
    }
    body.update(overrides)
    return body


def trade_settings(database_url: str, **overrides: Any) -> TradeSettings:
    """Settings for a test app: fast retries, the given database."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "execution_service_base_url": "http://execution.test",
        "execution_service_retry_initial_delay_ms": 1,
        "execution_service_retry_max_delay_ms": 5,
        "execution_service_individual_retry_initial_delay_ms": 1,
        "execution_service_individual_retry_max_delay_ms": 5,
        "log_json": False,
    }
    values.update(overrides)
    return TradeSettings(**values)


@asynccontextmanager
async def serving(
    app: FastAPI, base_url: str = "http://trade.test"
) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` with its lifespan running, and a client that calls it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


@asynccontextmanager
async def trade_app(
    database_url: str, transport: httpx.AsyncBaseTransport, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(trade_settings(database_url, **overrides), transport=transport)
    async with serving(app) as client:
        yield client


async def create_orders(
    client: httpx.AsyncClient, n: int, **overrides: Any
) -> list[dict[str, Any]]:
    orders = []
    for _ in range(n):
        r = await client.post("/api/v1/tradeOrders", json=order_payload(**overrides))
        assert r.status_code == 201, r.text
        orders.append(r.json())
    return orders


async def create_executions(
    client: httpx.AsyncClient, n: int, **overrides: Any
) -> list[dict[str, Any]]:
    """n trade orders, each with one NEW execution made without sending it."""
    executions = []
    for order in await create_orders(client, n, **overrides):
        r = await client.post(
            f"/api/v1/tradeOrders/{order['id']}/submit",
            params={"noExecuteSubmit": "true"},
            json={"quantity": order["quantity"], "destinationId": 1},
        )
        assert r.status_code == 201, r.text
        executions.append(r.json())
    return executions


_SERVICE_IDS = itertools.count(5000)

Handler = Callable[[httpx.Request, list[dict[str, Any]]], Awaitable[httpx.Response]]


@dataclass
class ScriptedExecutionService:
    """Stands in for the execution service's batch endpoint in protocol tests.

    ``handler`` decides each answer from the request and its parsed executions;
    every request is kept (key, body) so tests can check what was sent.
    """

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)
    #: Shared by every fake: like the real service, ids are never handed out twice (the
    #: trade service refuses to record an id another execution already holds).
    next_id: itertools.count[int] = field(default_factory=lambda: _SERVICE_IDS)

    def transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            body = json.loads(request.content)
            return await self.handler(request, body["executions"])

        return httpx.MockTransport(handle)

    def keys(self) -> list[str]:
        return [r.headers["Idempotency-Key"] for r in self.requests]

    def sizes(self) -> list[int]:
        return [len(json.loads(r.content)["executions"]) for r in self.requests]

    def result(
        self, index: int, item: dict[str, Any], ok: bool = True, message: str = ""
    ) -> dict[str, Any]:
        if not ok:
            return {
                "requestIndex": index,
                "status": "FAILED",
                "message": message,
                "execution": None,
            }
        execution = {"id": next(self.next_id), **item}
        return {"requestIndex": index, "status": "SUCCESS", "message": None, "execution": execution}


def batch_body(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(1 for r in results if r["status"] == "SUCCESS")
    total = len(results)
    status = "SUCCESS" if ok == total else "FAILED" if ok == 0 else "PARTIAL_SUCCESS"
    return {
        "status": status,
        "message": f"{ok} of {total} executions created successfully",
        "totalRequested": total,
        "successful": ok,
        "failed": total - ok,
        "results": results,
    }


def batch_response(results: list[dict[str, Any]]) -> httpx.Response:
    ok = sum(1 for r in results if r["status"] == "SUCCESS")
    code = 201 if ok == len(results) else 400 if ok == 0 else 207
    return httpx.Response(code, json=batch_body(results))
