"""Load against real execution-service processes, and what reached the broker, by event id.

Shared by the broker-outage and replica tests: post N executions in batches from
concurrent clients (round-robin over the replicas given), then compare the broker's
records with the outbox table — every committed event once by its ``event-id``
header, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.execution.factories import item
from tests.execution.harness import encode
from tests.fixtures.processes import Served, serve
from tests.fixtures.servers import PG_ADMIN
from tests.fixtures.waiting import consume, eventually
from tranche.core.migrations import upgrade

__all__ = [
    "Delivery",
    "Load",
    "delivered",
    "execution_replicas",
    "kill_backends",
    "plain_dsn",
    "post_load",
]

JSON = {"content-type": "application/json"}


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    created: int = 0
    seconds: float = 0.0


async def post_load(
    replicas: Sequence[Served], total: int, *, batch: int = 100, clients: int = 4, load: Load
) -> Load:
    """``total`` executions in batches of ``batch``; batch *i* goes to replica *i* mod n."""
    numbers = iter(range(0, total, batch))
    lock = asyncio.Lock()

    async def client() -> None:
        while True:
            async with lock:
                start = next(numbers, None)
            if start is None:
                return
            n = min(batch, total - start)
            replica = replicas[(start // batch) % len(replicas)]
            body = {"executions": [item() for _ in range(n)]}
            r = await replica.client.post(
                "/api/v1/executions/batch", content=encode(body), headers=JSON
            )
            load.statuses[r.status_code] += 1
            if r.status_code == 201:
                load.created += n

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    load.seconds += time.perf_counter() - began
    return load


@dataclass
class Delivery:
    committed: int
    received: int
    distinct: int
    duplicated: int
    missing: int
    unknown: int


async def delivered(dsn: str, bootstrap: str, topic: str, timeout_s: float = 300) -> Delivery:
    """Wait for the outbox to drain, then read the topic and compare by event id."""
    conn = await asyncpg.connect(dsn)
    try:
        pending = "SELECT count(*) FROM outbox WHERE status <> 'SENT'"
        await eventually(lambda: conn.fetchval(pending), timeout_s, "the outbox to drain", until=0)
        ids = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM outbox")}
    finally:
        await conn.close()
    records = await consume(bootstrap, topic, expected=len(ids), timeout_s=120)
    seen = Counter(dict(r.headers).get("event-id", b"").decode() for r in records)
    return Delivery(
        committed=len(ids),
        received=len(records),
        distinct=len(seen),
        duplicated=sum(c - 1 for c in seen.values() if c > 1),
        missing=len(ids - set(seen)),
        unknown=len(set(seen) - ids),
    )


async def kill_backends(
    database: str, stop: asyncio.Event, killed: list[int], every_s: float = 0.05
) -> None:
    """Terminate one backend of ``database`` (picked at random) every ``every_s`` until ``stop``:
    some statements die mid-flight, others commit, as in a failover or an operator's
    ``pg_terminate_backend``."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        while not stop.is_set():
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                "WHERE pid = (SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                "AND pid <> pg_backend_pid() ORDER BY random() LIMIT 1)",
                database,
            )
            killed.append(sum(1 for r in rows if r["ok"]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await admin.close()


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@asynccontextmanager
async def execution_replicas(
    n: int, url: str, bootstrap: str, topic: str, work: Path, **settings: str
) -> AsyncIterator[list[Served]]:
    """``n`` ``tranche serve execution`` processes on the database ``url`` (migrated here)."""
    await upgrade("execution", url)
    await asyncio.to_thread(work.mkdir, parents=True, exist_ok=True)
    env = {
        "EXECUTION_DATABASE_URL": url,
        "EXECUTION_ORDERS_TOPIC": topic,
        "EXECUTION_LOG_LEVEL": "WARNING",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",  # the embedded broker refuses InitProducerId
        **{f"EXECUTION_{k.upper()}": v for k, v in settings.items()},
    }
    async with AsyncExitStack() as stack:
        served = []
        for i in range(n):
            replica_env = {**env, "EXECUTION_DATA_DIR": str(work / f"replica{i}")}
            served.append(
                await stack.enter_async_context(
                    serve("execution", f"execution-{i}", work, replica_env)
                )
            )
        yield served
