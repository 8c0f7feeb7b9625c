"""Property: whatever mix of submissions and execution-service answers, every trade order's
``quantitySent`` is the sum of its executions, ``submitted`` agrees with it, and every
execution left behind was accepted (SENT, with the execution service's id)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.trade.factories import ScriptedExecutionService, batch_response, create_orders, trade_app
from tranche.core.migrations import upgrade

ORDERS = 4
QUANTITY = 30


def _execution_service() -> ScriptedExecutionService:
    """Answers by quantity: multiples of 3 refused, ≡ 2 refused once for a transient reason."""
    refused_once: set[int] = set()
    ref: list[ScriptedExecutionService] = []

    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        results = []
        for i, item in enumerate(items):
            q, ours = int(item["quantity"]), item["tradeServiceExecutionId"]
            if q % 3 == 0:
                results.append(ref[0].result(i, item, ok=False, message="securityId not tradable"))
            elif q % 3 == 2 and ours not in refused_once:
                refused_once.add(ours)
                results.append(ref[0].result(i, item, ok=False, message="connection reset"))
            else:
                results.append(ref[0].result(i, item))
        return batch_response(results)

    service = ScriptedExecutionService(handler)
    ref.append(service)
    return service


submission = st.tuples(st.integers(0, ORDERS - 1), st.integers(1, 12))
step = st.one_of(
    st.tuples(st.just("single"), submission),
    st.tuples(
        st.just("batch"),
        st.lists(submission, min_size=1, max_size=ORDERS, unique_by=lambda s: s[0]),
    ),
)


async def _check(client: httpx.AsyncClient, orders: list[dict[str, Any]]) -> None:
    executions = (await client.get("/api/v1/executions")).json()
    by_order: dict[int, Decimal] = defaultdict(Decimal)
    for e in executions:
        assert e["executionStatus"]["abbreviation"] == "SENT"
        assert e["executionServiceId"] is not None
        assert e["quantityPlaced"] == e["quantityOrdered"]
        by_order[e["tradeOrder"]["id"]] += Decimal(e["quantityOrdered"])
    for order in orders:
        now = (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json()
        sent = Decimal(str(now["quantitySent"]))
        assert sent == by_order[order["id"]]
        assert sent <= QUANTITY
        assert now["submitted"] is (abs(QUANTITY - sent) <= Decimal("0.01"))


async def _run(client: httpx.AsyncClient, plan: list[Any]) -> None:
    orders = await create_orders(client, ORDERS, quantity=QUANTITY)
    for kind, arg in plan:
        if kind == "single":
            index, quantity = arg
            r = await client.post(
                f"/api/v1/tradeOrders/{orders[index]['id']}/submit",
                json={"quantity": quantity, "destinationId": 1},
            )
            assert r.status_code in (201, 400), r.text
        else:
            subs = [
                {"tradeOrderId": orders[i]["id"], "quantity": q, "destinationId": 2} for i, q in arg
            ]
            body = (
                await client.post("/api/v1/tradeOrders/batch/submit", json={"submissions": subs})
            ).json()
            assert body["successful"] + body["failed"] == body["totalRequested"] == len(subs)
            assert [x["requestIndex"] for x in body["results"]] == list(range(len(subs)))
        await _check(client, orders)


def test_quantity_sent_is_always_the_sum_of_accepted_executions(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    url = f"sqlite+aiosqlite:///{tmp_path / 'trade.db'}"
    try:
        loop.run_until_complete(upgrade("trade", url))
        client = loop.run_until_complete(
            stack.enter_async_context(trade_app(url, _execution_service().transport()))
        )

        @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(plan=st.lists(step, min_size=1, max_size=5))
        def check(plan: list[Any]) -> None:
            loop.run_until_complete(_run(client, plan))

        check()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
