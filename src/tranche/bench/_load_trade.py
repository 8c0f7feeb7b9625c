"""The trade-service part of ``tranche bench load``: ``tranche serve trade`` as a child
process pointed at the execution service, trade orders to submit, clients asking it
to submit them concurrently, and the check that every execution was recorded with
its outcome on both sides."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

from tranche.bench._execution_load import pct, stop_child, wait_ready
from tranche.bench.submit import ADMIN_POOL
from tranche.core.broker import free_port
from tranche.core.db import Database
from tranche.trade.models import TradeOrder

__all__ = ["TradeServed", "recorded", "seed_orders", "served_trade", "submit_all"]

SUBMIT_PATH = "/api/v1/tradeOrders/batch/submit"
#: The trade API's largest batch submission.
SUBMISSIONS_PER_REQUEST = 100
_SENT = "SENT"
JSON = {"content-type": "application/json"}


@dataclass
class TradeServed:
    client: httpx.AsyncClient
    pid: int
    log: Path


@asynccontextmanager
async def served_trade(
    database_url: str, execution_url: str, work: Path, **settings: Any
) -> AsyncIterator[TradeServed]:
    """``tranche serve trade`` as a child process (uvicorn on loopback)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADE_")}
    options = {
        "database_url": database_url,
        "execution_service_base_url": execution_url,
        "data_dir": work / "trade",
        "log_level": "WARNING",
        **settings,
    }
    env.update({f"TRADE_{k.upper()}": str(v) for k, v in options.items()})
    log = work / "trade.log"
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "tranche", "serve", "trade", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=httpx.Timeout(600, connect=10),
            limits=httpx.Limits(max_connections=100),
        ) as client:
            await wait_ready(client, child, log, "the trade service", "/api/v1/health/readiness")
            yield TradeServed(client, child.pid, log)
    finally:
        await stop_child(child)


async def seed_orders(trade_url: str, n: int, first_order_id: int) -> list[tuple[int, Decimal]]:
    """``n`` unsubmitted trade orders written straight to the trade database (setup, not
    measured); returns their ids and quantities."""
    db = Database.open("bench-load-trade", trade_url, ADMIN_POOL)
    out: list[tuple[int, Decimal]] = []
    now = datetime.now(UTC)
    try:
        for start in range(0, n, 1000):
            rows = [
                {
                    "order_id": first_order_id + i,
                    "portfolio_id": f"{i % 211:024x}",
                    "order_type": ("BUY", "SELL", "SHORT", "COVER")[i % 4],
                    "security_id": f"{i % 97:024x}",
                    "quantity": Decimal(100 + i % 900),
                    "quantity_sent": Decimal(0),
                    "limit_price": Decimal("25.50"),
                    "trade_timestamp": now,
                    "blotter_id": 2,
                    "submitted": False,
                    "version": 1,
                }
                for i in range(start, min(n, start + 1000))
            ]
            async with db.engine.begin() as conn:
                result = await conn.execute(
                    sa.insert(TradeOrder).returning(TradeOrder.id, TradeOrder.quantity), rows
                )
                out += [(int(r[0]), Decimal(r[1])) for r in result]
    finally:
        await db.close()
    return out


async def submit_all(
    trade: TradeServed, orders: Sequence[tuple[int, Decimal]], clients: int
) -> dict[str, Any]:
    """``clients`` clients taking the orders 100 at a time and asking the trade service to
    submit them (``POST /api/v1/tradeOrders/batch/submit``: reserve, send to the execution
    service in bulk, record the outcome)."""
    queue: asyncio.Queue[Sequence[tuple[int, Decimal]]] = asyncio.Queue()
    for first in range(0, len(orders), SUBMISSIONS_PER_REQUEST):
        queue.put_nowait(orders[first : first + SUBMISSIONS_PER_REQUEST])
    latencies: list[float] = []
    errors: list[str] = []
    submitted = 0

    async def client() -> None:
        nonlocal submitted
        while not queue.empty():
            chunk = queue.get_nowait()
            body = {
                "submissions": [
                    {"tradeOrderId": id_, "quantity": str(q), "destinationId": 1 + id_ % 6}
                    for id_, q in chunk
                ]
            }
            start = time.perf_counter()
            try:
                r = await trade.client.post(SUBMIT_PATH, content=orjson.dumps(body), headers=JSON)
            except Exception as exc:  # counted, and the run goes on: errors are a result
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((time.perf_counter() - start) * 1000)
            reply = orjson.loads(r.content) if r.status_code in (200, 207) else {}
            ok = int(reply.get("successful", 0))
            submitted += ok
            if r.status_code != 200 or ok != len(chunk):
                errors.append(f"HTTP {r.status_code}: {r.text[:200]}")

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - began
    return {
        "orders": len(orders),
        "clients": clients,
        "requests": len(latencies),
        "submitted": submitted,
        "seconds": round(seconds, 2),
        "executions_per_s": round(submitted / seconds, 1),
        "p50_ms": round(pct(latencies, 0.5), 1) if latencies else None,
        "p99_ms": round(pct(latencies, 0.99), 1) if latencies else None,
        "errors": len(errors),
        "error_sample": errors[:3],
    }


async def recorded(trade_url: str, execution_url: str) -> tuple[dict[str, int], set[int]]:
    """Every trade-side execution and its outcome, matched against the execution
    service's rows: counts, and the execution service's ids of those SENT."""
    trade = Database.open("bench-load-trade", trade_url, ADMIN_POOL)
    try:
        async with trade.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.text(
                        "SELECT e.id, e.execution_service_id, s.abbreviation FROM execution e "
                        "JOIN execution_status s ON s.id = e.execution_status_id"
                    )
                )
            ).all()
    finally:
        await trade.close()
    sent = {int(r[1]): int(r[0]) for r in rows if r[2] == _SENT and r[1] is not None}
    execution = Database.open("bench-load-execution", execution_url, ADMIN_POOL)
    try:
        async with execution.engine.connect() as conn:
            theirs = (
                await conn.execute(
                    sa.text(
                        "SELECT id, trade_service_execution_id FROM execution WHERE id = ANY(:ids)"
                    ),
                    {"ids": list(sent)},
                )
            ).all()
    finally:
        await execution.close()
    matched = sum(1 for r in theirs if sent.get(int(r[0])) == r[1])
    counts = {
        "trade_executions": len(rows),
        "sent_with_service_id": len(sent),
        "other_status": sum(1 for r in rows if r[2] != _SENT),
        "matched_in_execution_service": matched,
    }
    return counts, set(sent)
