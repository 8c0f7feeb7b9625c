"""The trade service's PostgreSQL connections killed while it submits to the real execution
service (claims, outcome transactions): no execution is created twice at the execution
service, and each trade execution ends with its outcome committed or its claim released
— so resubmitting what is left sends each one once more at most, and finally all once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from tests.fixtures.logs import plain_tracebacks
from tests.fixtures.servers import postgres_databases
from tests.reliability.harness import kill_backends
from tests.trade.factories import create_orders
from tests.trade.peers import peers
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _trade_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT id, execution_service_id, submission_claimed_at, submission_key "
            "FROM execution ORDER BY id"
        )
    finally:
        await conn.close()


async def _under_fire(broker: EmbeddedBroker, tmp_path: Path, orders: int, group: int) -> dict:
    with plain_tracebacks():
        async with postgres_databases() as factory:
            created: list[str] = []

            async def named(prefix: str) -> str:
                url = await factory(prefix)
                created.append(url)
                return url

            async with peers("asgi", named, broker.bootstrap_servers, tmp_path) as p:
                trade_url = created[0]
                trade_db = trade_url.rsplit("/", 1)[1]
                dsn = trade_url.replace("+asyncpg", "")
                made = await create_orders(p.trade, orders)
                stop, killed = asyncio.Event(), []
                killer = asyncio.create_task(kill_backends(trade_db, stop, killed, 0.25))
                statuses: Counter[int] = Counter()
                try:
                    for start in range(0, orders, group):
                        subs = [
                            {"tradeOrderId": o["id"], "quantity": o["quantity"], "destinationId": 2}
                            for o in made[start : start + group]
                        ]
                        r = await p.trade.post(
                            "/api/v1/tradeOrders/batch/submit", json={"submissions": subs}
                        )
                        statuses[r.status_code] += 1
                        assert r.status_code < 500 or r.status_code == 503, r.text[:500]
                finally:
                    stop.set()
                    await killer
                rows = await _trade_rows(dsn)
                at_service = await p.execution_rows([r["id"] for r in rows])
                # Nothing created twice, whatever was answered.
                assert all(len(v) == 1 for v in at_service.values()), at_service
                held = [
                    r["id"]
                    for r in rows
                    if r["execution_service_id"] is None and r["submission_claimed_at"] is not None
                ]
                # Every claim released or its outcome committed.
                assert held == [], f"claims left behind: {held}"
                for r in rows:
                    if r["execution_service_id"] is not None:
                        assert at_service[r["id"]] == [r["execution_service_id"]]
                # Recovery: what is left unsent is submitted again, and goes once.
                unsent = [r["id"] for r in rows if r["execution_service_id"] is None]
                for id_ in unsent:
                    r = await p.trade.post(f"/api/v1/execution/{id_}/submit")
                    # 409 "already submitted": it went with a companion of its kept
                    # Idempotency-Key, resent as the whole batch of that key.
                    assert r.status_code == 200 or "already submitted" in r.text, r.text[:500]
                rows = await _trade_rows(dsn)
                at_service = await p.execution_rows([r["id"] for r in rows])
                assert {r["id"]: [r["execution_service_id"]] for r in rows} == at_service
                return {
                    "statuses": dict(statuses),
                    "executions": len(rows),
                    "unsent_after_fire": len(unsent),
                    "backends_killed": sum(killed),
                }


@pytest.mark.timeout(300)
async def test_trade_db_killed_while_submitting_nothing_duplicated(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    figures = await _under_fire(broker, tmp_path, orders=120, group=10)
    print(f"FIGURE trade-pg-kill orders=120 group=10 {figures}")


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_trade_db_killed_long(broker: EmbeddedBroker, tmp_path: Path) -> None:
    figures = await _under_fire(broker, tmp_path, orders=600, group=50)
    print(f"FIGURE trade-pg-kill-long orders=600 group=50 {figures}")
