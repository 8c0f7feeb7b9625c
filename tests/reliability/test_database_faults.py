"""PostgreSQL connections killed mid-batch (``pg_terminate_backend``) under the execution
service: every chunk is committed whole (its rows and its events) or not at all, every
batch answers what it did (201/207 naming each created execution) or 503, and the
service recovers without a restart — the next batch is created whole and the relay
delivers every committed event.

Before issue 18's fix (``core/db.py``) a backend killed mid-statement left the pooled
asyncpg connection broken (``InternalClientError: cannot switch to state 15``, or a
closed connection SQLAlchemy did not count as a disconnect): batches answered 500
and the relay's rounds failed until the process restarted.

Each batch has several chunks (chunk size below the batch size, two written at once)
so that a kill can land between the commits of one request: a 503 may leave whole
chunks committed, never a part of one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.execution.factories import item
from tests.execution.harness import Harness, running
from tests.fixtures.logs import plain_tracebacks
from tests.fixtures.servers import postgres_databases
from tests.fixtures.waiting import eventually
from tests.reliability.harness import kill_backends
from tranche.core.broker import EmbeddedBroker
from tranche.core.outbox import outbox_table
from tranche.execution.models import execution_table as t

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

CHUNK = 100
#: Each batch's tradeServiceExecutionIds are BASE * batch number + position, so a stored
#: row tells which batch and which chunk it belongs to.
BASE = 100_000


@pytest.fixture
async def service(tmp_path: Path, broker: EmbeddedBroker) -> AsyncIterator[Harness]:
    """The execution service on a fresh PostgreSQL database, chunks of ``CHUNK`` rows."""
    with plain_tracebacks():
        async with postgres_databases() as factory:
            url = await factory("rkill")
            async with running(
                url,
                broker.bootstrap_servers,
                tmp_path,
                bulk_insert_batch_size=CHUNK,
                max_batch_size=1000,
                parallel_chunks=2,
            ) as harness:
                yield harness


@dataclass
class Fire:
    statuses: Counter[int] = field(default_factory=Counter)
    #: tradeServiceExecutionId → execution id, for every item answered SUCCESS.
    reported: dict[int, int] = field(default_factory=dict)
    #: Batches answered 503, by batch number.
    unavailable: list[int] = field(default_factory=list)
    killed: int = 0


async def _batches_under_fire(app: Harness, batches: int, size: int) -> Fire:
    database = app.url.rsplit("/", 1)[1]
    stop, killed = asyncio.Event(), []
    killer = asyncio.create_task(kill_backends(database, stop, killed))
    fire = Fire()
    try:
        for b in range(1, batches + 1):
            items = [item(tradeServiceExecutionId=BASE * b + i) for i in range(size)]
            r = await app.post("/api/v1/executions/batch", {"executions": items})
            fire.statuses[r.status_code] += 1
            assert r.status_code in (201, 207, 503), r.text[:500]
            if r.status_code == 503:
                assert r.headers["retry-after"]
                fire.unavailable.append(b)
                continue
            for res, sent in zip(r.json()["results"], items, strict=True):
                if res["status"] == "SUCCESS":
                    fire.reported[sent["tradeServiceExecutionId"]] = res["execution"]["id"]
    finally:
        stop.set()
        await killer
    fire.killed = sum(killed)
    return fire


async def _check(app: Harness, fire: Fire, batches: int, size: int) -> dict[str, object]:
    """Whole chunks only, rows and events together, and a service that works again."""
    async with app.parts.db.sessions() as s:
        rows = (await s.execute(sa.select(t.c.trade_service_execution_id, t.c.id))).all()
        stored: dict[int, int] = dict(rows)
        keys = Counter((await s.execute(sa.select(outbox_table.c.key))).scalars().all())
    # Every item answered SUCCESS is stored under the id the answer gave.
    assert {k: stored.get(k) for k in fire.reported} == fire.reported
    partial = 0
    for b in range(1, batches + 1):
        tsids = [BASE * b + i for i in range(size)]
        present = [x in stored for x in tsids]
        if b not in fire.unavailable:  # answered: exactly what it reported, nothing else
            assert [x in fire.reported for x in tsids] == present, f"batch {b}"
            continue
        for c in range(0, size, CHUNK):  # 503: each chunk all or nothing
            chunk = present[c : c + CHUNK]
            assert all(chunk) or not any(chunk), f"batch {b} chunk {c // CHUNK}: {chunk}"
        partial += any(present)
    # A chunk's events committed with its rows: one event per stored execution, no other.
    assert keys == Counter(str(i) for i in stored.values())

    # Recovered without a restart: a batch is created whole, and every event goes out.
    nxt = [item(tradeServiceExecutionId=BASE * (batches + 1) + i) for i in range(size)]
    r = await app.post("/api/v1/executions/batch", {"executions": nxt})
    assert r.status_code == 201, r.text[:500]
    pending = "SELECT count(*) FROM outbox WHERE status = 'PENDING'"
    await eventually(lambda: app.scalar(pending), 120, "the relay to send every event", until=0)
    return {
        "statuses": dict(fire.statuses),
        "created": len(fire.reported),
        "batches_503_with_whole_chunks_committed": partial,
        "backends_killed": fire.killed,
        "stored": len(stored) + size,
    }


async def test_killed_connections_leave_whole_chunks_and_the_service_recovers(
    service: Harness,
) -> None:
    batches, size = 8, 300
    fire = await _batches_under_fire(service, batches, size)
    assert fire.killed > 0
    figures = await _check(service, fire, batches, size)
    print(f"FIGURE pg-kill batches={batches} size={size} chunk={CHUNK} {figures}")


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_killed_connections_long(service: Harness) -> None:
    batches, size = 200, 500
    fire = await _batches_under_fire(service, batches, size)
    assert fire.killed > 0
    assert fire.statuses[503] > 0  # the kills did hit batches in flight
    figures = await _check(service, fire, batches, size)
    print(f"FIGURE pg-kill-long batches={batches} size={size} chunk={CHUNK} {figures}")
