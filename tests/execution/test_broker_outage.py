"""A broker outage delays events; it never fails or holds up a create."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from tests.execution.factories import item
from tests.execution.harness import running
from tests.fixtures.waiting import consume, eventually
from tranche.core.broker import EmbeddedBroker
from tranche.execution.models import execution_table as t

pytestmark = [pytest.mark.kafka]


async def _all(count: Coroutine[Any, Any, int], expected: int) -> bool:
    return await count == expected


async def test_creates_succeed_while_the_broker_is_down(
    private_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    private_broker.start()
    await private_broker.wait_ready()
    url = f"sqlite+aiosqlite:///{tmp_path / 'outage.db'}"
    async with running(
        url,
        private_broker.bootstrap_servers,
        tmp_path,
        publish_wait_ms=300,
        outbox_breaker_reset_ms=200,
        outbox_initial_backoff_ms=50,
        outbox_max_backoff_ms=200,
    ) as app:
        await asyncio.to_thread(private_broker.stop)
        r = await app.post("/api/v1/executions/batch", {"executions": [item(), item()]})
        assert r.status_code == 201
        created = [res["execution"] for res in r.json()["results"]]
        assert all(e["sentTimestamp"] is None for e in created)
        single = await app.post("/api/v1/executions", item())
        assert single.status_code == 201
        ids = [e["id"] for e in created] + [single.json()["id"]]

        await asyncio.to_thread(private_broker.start)
        await private_broker.wait_ready()
        records = await consume(private_broker.bootstrap_servers, app.topic, 3, timeout_s=30)
        assert sorted(int(r.key or b"0") for r in records) == sorted(ids)

        async def stamped() -> int:
            return await app.count(t.c.id.in_(ids) & t.c.sent_timestamp.is_not(None))

        await eventually(lambda: _all(stamped(), 3))
