"""Chunks of one request written at once (EXECUTION_PARALLEL_CHUNKS) on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.execution.factories import item
from tests.execution.harness import running
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

N = 1000


async def test_ids_follow_the_request_order_across_parallel_chunks(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path
) -> None:
    async with running(
        postgres_url,
        broker.bootstrap_servers,
        tmp_path,
        max_batch_size=N,
        bulk_insert_batch_size=100,
        parallel_chunks=4,
    ) as app:
        assert app.parts.writer.parallel_chunks == 4
        items = [item(quantity=i + 1) for i in range(N)]
        r = await app.post("/api/v1/executions/batch", {"executions": items})
        assert r.status_code == 201, r.text[:300]
        results = r.json()["results"]
        assert [res["requestIndex"] for res in results] == list(range(N))
        assert [res["execution"]["quantity"] for res in results] == [i + 1 for i in range(N)]
        ids = [res["execution"]["id"] for res in results]
        assert ids == sorted(ids)
        assert len(set(ids)) == N
        assert await app.count(sa.text(f"id >= {ids[0]} AND id <= {ids[-1]}")) == N
        assert await app.scalar("SELECT count(*) FROM outbox") >= N


async def test_a_refused_row_fails_alone_while_other_chunks_go_through(
    broker: EmbeddedBroker, postgres_factory: Any, tmp_path: Path
) -> None:
    url = await postgres_factory("parallel")
    async with running(
        url,
        broker.bootstrap_servers,
        tmp_path,
        max_batch_size=N,
        bulk_insert_batch_size=100,
        parallel_chunks=3,
    ) as app:
        async with app.parts.db.transaction() as s:
            await s.execute(
                sa.text("ALTER TABLE execution ADD CONSTRAINT no_x CHECK (destination <> 'X')")
            )
        bad = {150, 420, 421, 999}
        items = [item(destination="X" if i in bad else "ML") for i in range(N)]
        r = await app.post("/api/v1/executions/batch", {"executions": items})
        assert r.status_code == 207, r.text[:300]
        body = r.json()
        assert body["successful"] == N - len(bad)
        failed = {res["requestIndex"] for res in body["results"] if res["status"] == "FAILED"}
        assert failed == bad
        assert all(
            res["message"].startswith("Database error: ")
            for res in body["results"]
            if res["status"] == "FAILED"
        )
        assert await app.count() == N - len(bad)
        assert await app.scalar("SELECT count(*) FROM outbox") == N - len(bad)
