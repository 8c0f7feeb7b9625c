"""PostgreSQL connections killed mid-batch (``pg_terminate_backend``) under the execution
service: every chunk is committed whole or reported failed, nothing is half-written,
and the service recovers without a restart.

Open finding (issue 18, not fixed on this branch): after a backend is killed
mid-statement, asyncpg can leave the pooled connection "in another operation"
(``InternalClientError: cannot switch to state 15``). SQLAlchemy does not count that as
a disconnect, so the pool keeps handing the broken connection out: the batch answers
500 and the relay's rounds fail until the process restarts. The root fix belongs in
``core/db.py`` (a ``handle_error`` listener that marks it a disconnect and raises it as
OperationalError → 503). Both tests are ``slow`` and strict-xfail until then, so the
day the fix lands they fail and must lose the marker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa

from tests.execution.factories import item
from tests.execution.harness import Harness
from tests.fixtures.servers import PG_ADMIN
from tranche.execution.models import execution_table as t

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _kill_backends(database: str, stop: asyncio.Event, killed: list[int]) -> None:
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        while not stop.is_set():
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
            killed.append(sum(1 for r in rows if r["ok"]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)
    finally:
        await admin.close()


async def _batches_under_fire(app: Harness, batches: int, size: int) -> dict[str, Any]:
    database = app.url.rsplit("/", 1)[1]
    before = await app.count()
    stop, killed = asyncio.Event(), []
    killer = asyncio.create_task(_kill_backends(database, stop, killed))
    statuses: Counter[int] = Counter()
    created: list[int] = []
    tsids: list[int] = []
    try:
        for _ in range(batches):
            items = [item() for _ in range(size)]
            r = await app.post("/api/v1/executions/batch", {"executions": items})
            statuses[r.status_code] += 1
            assert r.status_code in (201, 207, 400, 503), r.text[:500]
            if r.status_code == 503:
                continue
            for res, sent in zip(r.json()["results"], items, strict=True):
                if res["status"] == "SUCCESS":
                    created.append(res["execution"]["id"])
                    tsids.append(sent["tradeServiceExecutionId"])
    finally:
        stop.set()
        await killer
    # What was reported created is exactly what is stored: no partial chunk, no ghost row.
    async with app.parts.db.sessions() as s:
        stored = (await s.execute(sa.select(t.c.id).where(t.c.id > 0))).scalars().all()
    assert await app.count() == before + len(created)
    assert set(created) <= set(stored)
    # Recovered without a restart: the next batch is created whole.
    r = await app.post("/api/v1/executions/batch", {"executions": [item() for _ in range(size)]})
    assert r.status_code == 201, r.text[:500]
    return {"statuses": statuses, "created": len(created), "killed": sum(killed)}


FINDING = pytest.mark.xfail(
    strict=True,
    reason="asyncpg InternalClientError after pg_terminate_backend: pool keeps the connection",
)


@pytest.mark.slow
@FINDING
async def test_killed_connections_leave_whole_chunks_and_the_service_recovers(
    postgres_execution: Harness,
) -> None:
    figures = await _batches_under_fire(postgres_execution, batches=30, size=50)
    assert figures["killed"] > 0
    print(f"FIGURE pg-kill batches=30 size=50 {figures}")


@pytest.mark.slow
@FINDING
async def test_killed_connections_long(postgres_execution: Harness) -> None:
    figures = await _batches_under_fire(postgres_execution, batches=400, size=100)
    assert figures["killed"] > 0
    print(f"FIGURE pg-kill-long batches=400 size=100 {figures}")
