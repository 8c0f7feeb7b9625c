"""The trade service's part of ``tranche demo``.

Over real HTTP on loopback: create trade orders, submit them in bulk (the trade
service sends them to the execution service in batches), show the outcome, then
fill one execution at the execution service and wait until its fill reaches the
trade service's execution.
"""

from __future__ import annotations

import asyncio
import random
import time
from decimal import Decimal
from typing import Any

import httpx

from tranche.core.service import DemoContext, DemoLine
from tranche.trade.settings import TradeSettings

__all__ = ["run_demo"]

ORDERS = 240
ORDER_TYPES = ("BUY", "SELL", "SHORT", "COVER", "EXRC")


def _order(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "orderId": 700_000 + n,
        "portfolioId": f"{rng.getrandbits(96):024x}",
        "orderType": rng.choice(ORDER_TYPES),
        "securityId": f"{rng.getrandbits(96):024x}",
        "quantity": rng.randrange(100, 5_000, 50),
        "limitPrice": round(rng.uniform(5, 500), 2),
        "blotterId": rng.randint(1, 4),
    }


async def _create_orders(trade: httpx.AsyncClient, rng: random.Random) -> list[dict[str, Any]]:
    created = []
    for n in range(ORDERS):
        r = await trade.post("/api/v1/tradeOrders", json=_order(rng, n))
        r.raise_for_status()
        created.append(r.json())
    return created


async def _submit(
    trade: httpx.AsyncClient, orders: list[dict[str, Any]], rng: random.Random
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Submit every order in requests of 100; one asks for more than the order holds."""
    results: list[dict[str, Any]] = []
    codes: dict[int, int] = {}
    for start in range(0, len(orders), 100):
        chunk = orders[start : start + 100]
        submissions = [
            {"tradeOrderId": o["id"], "quantity": o["quantity"], "destinationId": rng.randint(1, 6)}
            for o in chunk
        ]
        if start == 0:
            submissions[0]["quantity"] = chunk[0]["quantity"] * 2  # refused: too much
        r = await trade.post("/api/v1/tradeOrders/batch/submit", json={"submissions": submissions})
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
        results += r.json()["results"]
    return results, codes


async def _fill_round_trip(
    trade: httpx.AsyncClient, execution: httpx.AsyncClient, ours: dict[str, Any]
) -> str:
    theirs = (await execution.get(f"/api/v1/execution/{ours['executionServiceId']}")).json()
    filled = Decimal(ours["quantityOrdered"]) / 2
    put = await execution.put(
        f"/api/v1/execution/{theirs['id']}",
        json={
            "quantityFilled": float(filled),
            "averagePrice": 101.25,
            "version": theirs["version"],
        },
    )
    put.raise_for_status()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = (await trade.get(f"/api/v1/executions/{ours['id']}")).json()
        if Decimal(now["quantityFilled"]) == filled:
            return (
                f"execution {ours['id']}: {now['executionStatus']['abbreviation']} "
                f"{now['quantityFilled']} of {now['quantityOrdered']} "
                f"(averagePrice {now['averagePrice']})"
            )
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the fill of execution {ours['id']} did not reach the trade service")


async def run_demo(settings: TradeSettings, ctx: DemoContext) -> list[DemoLine]:
    if "execution" not in ctx.base_urls:
        return [DemoLine("trade", "bulk submission", "skipped: no execution service registered")]
    rng = random.Random(2)
    async with (
        httpx.AsyncClient(base_url=ctx.base_urls["trade"], timeout=60) as trade,
        httpx.AsyncClient(base_url=ctx.base_urls["execution"], timeout=60) as execution,
    ):
        orders = await _create_orders(trade, rng)
        ctx.say(f"[bold]trade[/] created {len(orders)} trade orders")
        start = time.perf_counter()
        results, codes = await _submit(trade, orders, rng)
        seconds = time.perf_counter() - start
        ok = [r for r in results if r["status"] == "SUCCESS"]
        failed = [r for r in results if r["status"] != "SUCCESS"]
        ctx.say(
            f"[bold]trade[/] submitted {len(results)} orders in {seconds:.2f} s "
            f"(batches of {settings.effective_batch_size}): {len(ok)} sent, {len(failed)} refused"
        )
        for r in failed:
            ctx.say(f"  order {r['tradeOrderId']}: {r['message']}")
        sample = ok[0]["execution"]
        ctx.say(
            f"  e.g. execution {sample['id']} → execution service id "
            f"{sample['executionServiceId']}, status {sample['executionStatus']['abbreviation']}"
        )
        fill = await _fill_round_trip(trade, execution, sample)
        ctx.say(f"[bold]trade[/] fill came back: {fill}")
    http = ", ".join(f"{n}x{code}" for code, n in sorted(codes.items()))
    return [
        DemoLine("trade", "trade orders created", str(len(orders))),
        DemoLine(
            "trade",
            "bulk submission",
            f"{len(ok)} sent, {len(failed)} refused, {seconds:.2f} s (HTTP {http})",
        ),
        DemoLine("trade", "fill round trip", fill),
    ]
