"""Idempotency-Key on POST /executions and /executions/batch: whole-batch retries are safe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.execution.factories import item
from tests.execution.harness import Harness, running
from tranche.core.broker import EmbeddedBroker
from tranche.execution.models import execution_table as t

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _rows_for(app: Harness, items: list[dict[str, Any]]) -> int:
    return await app.count(
        t.c.trade_service_execution_id.in_([i["tradeServiceExecutionId"] for i in items])
    )


async def test_retry_with_the_same_key_replays_and_creates_nothing(any_app: Harness) -> None:
    items = [item(), item(quantity=-1), item()]
    key = {"Idempotency-Key": "batch-1"}
    first = await any_app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
    assert first.status_code == 207
    assert "idempotent-replayed" not in first.headers
    outbox = await any_app.scalar("SELECT count(*) FROM outbox")
    again = await any_app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
    assert again.status_code == 207
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert await _rows_for(any_app, items) == 2
    assert await any_app.scalar("SELECT count(*) FROM outbox") == outbox
    # Key order and number spelling do not make it a different body.
    reordered = [dict(reversed(list(i.items()))) for i in items]
    third = await any_app.post("/api/v1/executions/batch", {"executions": reordered}, headers=key)
    assert third.content == first.content


async def test_same_key_different_body_is_422(any_app: Harness) -> None:
    key = {"Idempotency-Key": "batch-2"}
    await any_app.post("/api/v1/executions/batch", {"executions": [item()]}, headers=key)
    r = await any_app.post("/api/v1/executions/batch", {"executions": [item()]}, headers=key)
    assert r.status_code == 422
    assert "Idempotency-Key" in r.json()["validationErrors"]


async def test_single_create_and_scopes(any_app: Harness) -> None:
    body = item()
    key = {"Idempotency-Key": "one-1"}
    first = await any_app.post("/api/v1/executions", body, headers=key)
    assert first.status_code == 201
    again = await any_app.post("/api/v1/executions", body, headers=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # The replay says where the execution is, as the first answer did.
    assert again.headers["location"] == first.headers["location"]
    assert first.headers["location"] == f"/api/v1/execution/{first.json()['id']}"
    assert await _rows_for(any_app, [body]) == 1
    # The same key on the other endpoint is a different key.
    batch = await any_app.post("/api/v1/executions/batch", {"executions": [item()]}, headers=key)
    assert batch.status_code == 201
    # A refused create is not stored: fixing the body and retrying with the key works.
    bad = await any_app.post(
        "/api/v1/executions", item(quantity=0), headers={"Idempotency-Key": "one-2"}
    )
    assert bad.status_code == 400
    blank = await any_app.post("/api/v1/executions", item(), headers={"Idempotency-Key": " "})
    assert blank.status_code == 400


async def test_concurrent_duplicates_create_once(any_app: Harness) -> None:
    items = [item() for _ in range(20)]
    key = {"Idempotency-Key": "race-1"}
    responses = await asyncio.gather(
        *(
            any_app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
            for _ in range(4)
        )
    )
    assert await _rows_for(any_app, items) == 20
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) >= 1
    assert set(statuses) <= {201, 409}
    bodies = {r.content for r in responses if r.status_code == 201}
    assert len(bodies) == 1


async def test_a_request_that_died_half_way_is_resumed_not_repeated(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'resume.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, bulk_insert_batch_size=2) as app:
        items = [item() for _ in range(5)]
        key = {"Idempotency-Key": "resume-1"}
        inserts = 0

        def fail_second_chunk(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
            nonlocal inserts
            if statement.startswith("INSERT INTO execution "):
                inserts += 1
                if inserts == 2:
                    raise sa.exc.OperationalError(statement, None, Exception("disk I/O error"))

        engine = app.parts.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", fail_second_chunk)
        try:
            first = await app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
        finally:
            event.remove(engine, "before_cursor_execute", fail_second_chunk)
        assert first.status_code == 503
        assert await _rows_for(app, items) == 2  # the first chunk committed
        retry = await app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
        assert retry.status_code == 201, retry.text
        body = retry.json()
        assert body["successful"] == 5
        assert await _rows_for(app, items) == 5
        assert await app.scalar("SELECT count(*) FROM outbox") == 5
        ids = [r["execution"]["id"] for r in body["results"]]
        assert ids == sorted(ids)
        replay = await app.post("/api/v1/executions/batch", {"executions": items}, headers=key)
        assert replay.content == retry.content
