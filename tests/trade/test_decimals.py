"""Quantities and prices are exact: read from bodies as decimals, stored as decimal(18,8),
written back and sent on to the execution service digit for digit (PostgreSQL; SQLite
stores REAL and keeps about fifteen significant digits, see docs/trade-service.md)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trade.factories import ScriptedExecutionService, batch_response, order_payload, trade_app

pytestmark = pytest.mark.postgres

# One id sequence for the module's database: a second fake starting at the same id would
# hand out ids already stored, which the trade service rightly refuses to record.
SERVICE_IDS = itertools.count(700_000)
EXTREMES = ["1234567890.12345678", "9999999999.99999999", "0.00000001"]


def _exact(response: httpx.Response) -> Any:
    return json.loads(response.content, parse_float=Decimal, parse_int=Decimal)


def _execution_service() -> ScriptedExecutionService:
    ref: list[ScriptedExecutionService] = []

    async def accept(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        return batch_response([ref[0].result(i, item) for i, item in enumerate(items)])

    ref.append(ScriptedExecutionService(accept, next_id=SERVICE_IDS))
    return ref[0]


@pytest.mark.parametrize("literal", EXTREMES)
async def test_extreme_decimals_survive_the_api_and_reach_the_execution_service(
    trade_pg_url: str, literal: str
) -> None:
    service = _execution_service()
    async with trade_app(trade_pg_url, service.transport()) as client:
        payload = json.dumps(order_payload(quantity=0, limitPrice=0)).replace(
            '"quantity": 0', f'"quantity": {literal}'
        )
        payload = payload.replace('"limitPrice": 0', f'"limitPrice": {literal}')
        created = await client.post(
            "/api/v1/tradeOrders", content=payload, headers={"Content-Type": "application/json"}
        )
        assert created.status_code == 201, created.text
        assert _exact(created)["quantity"] == Decimal(literal)
        assert f'"quantity":{Decimal(literal):.8f}'.encode() in created.content
        order_id = created.json()["id"]
        fetched = _exact(await client.get(f"/api/v1/tradeOrders/{order_id}"))
        assert fetched["quantity"] == fetched["limitPrice"] == Decimal(literal)
        submitted = await client.post(
            f"/api/v1/tradeOrders/{order_id}/submit",
            content=f'{{"quantity": {literal}, "destinationId": 1}}',
            headers={"Content-Type": "application/json"},
        )
        assert submitted.status_code == 201, submitted.text
    (sent,) = [json.loads(r.content, parse_float=Decimal) for r in service.requests]
    assert sent["executions"][0]["quantity"] == Decimal(literal)
    assert sent["executions"][0]["limitPrice"] == Decimal(literal)


async def test_more_than_eight_places_or_ten_digits_is_a_400_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    for literal in ("1.123456789", "12345678901", "1e400", "NaN"):
        payload = json.dumps(order_payload(quantity=0)).replace(
            '"quantity": 0', f'"quantity": {literal}'
        )
        r = await api.post(
            "/api/v1/tradeOrders", content=payload, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 400, (literal, r.text)
        if literal != "NaN":
            assert "quantity" in r.text


amounts = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=Decimal("9999999999.99999999"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
)


def test_any_decimal_18_8_round_trips_exactly(trade_pg_url: str) -> None:
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    try:
        client = loop.run_until_complete(
            stack.enter_async_context(trade_app(trade_pg_url, _execution_service().transport()))
        )

        async def round_trip(quantity: Decimal, price: Decimal) -> None:
            payload = order_payload(quantity=0, limitPrice=0)
            text = json.dumps(payload).replace('"quantity": 0', f'"quantity": {quantity}')
            text = text.replace('"limitPrice": 0', f'"limitPrice": {price}')
            created = await client.post(
                "/api/v1/tradeOrders", content=text, headers={"Content-Type": "application/json"}
            )
            assert created.status_code == 201, created.text
            again = _exact(await client.get(f"/api/v1/tradeOrders/{created.json()['id']}"))
            assert (again["quantity"], again["limitPrice"]) == (quantity, price)

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(quantity=amounts, price=amounts)
        def check(quantity: Decimal, price: Decimal) -> None:
            loop.run_until_complete(round_trip(quantity, price))

        check()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
