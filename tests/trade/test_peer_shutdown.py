"""The two services shut down while a fill delivery is inside the trade app (in process).

The execution service's deliverer calls the trade app in its own task. The delivery is
held right after the trade app's read of the filled execution took a connection, then
both services stop: nothing may be left open for the garbage collector to report,
unclosed, in a later test (it once was, in tests/trade/test_end_to_end.py)."""

from __future__ import annotations

import asyncio
import gc
import warnings
from pathlib import Path
from typing import Any

import pytest

import tranche.trade.fills as fills
from tests.fixtures.servers import DatabaseFactory
from tests.trade.factories import create_orders
from tests.trade.peers import peers
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_a_fill_delivery_in_flight_at_shutdown_leaves_no_connection_open(
    postgres_factory: DatabaseFactory,
    broker: EmbeddedBroker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = fills.get_execution
    calls = 0
    held = asyncio.Event()

    async def get_then_hold(session: Any, execution_id: int) -> Any:
        nonlocal calls
        calls += 1
        found = await real(session, execution_id)
        if calls == 2:  # apply_fill's read after its commit: the session has a connection
            held.set()
            await asyncio.Event().wait()  # until the shutdown cancels the delivery
        return found

    monkeypatch.setattr(fills, "get_execution", get_then_hold)
    async with peers("asgi", postgres_factory, broker.bootstrap_servers, tmp_path) as p:
        (order,) = await create_orders(p.trade, 1, quantity=300)
        submit = {"quantity": 300, "destinationId": 1}
        sent = (await p.trade.post(f"/api/v1/tradeOrders/{order['id']}/submit", json=submit)).json()
        theirs = (await p.execution.get(f"/api/v1/execution/{sent['executionServiceId']}")).json()
        fill = {"quantityFilled": 120, "averagePrice": 10.5, "version": theirs["version"]}
        put = await p.execution.put(f"/api/v1/execution/{theirs['id']}", json=fill)
        assert put.status_code == 200, put.text
        await held.wait()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
