"""The bulk path end to end on the real databases and the real broker."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.execution.factories import item
from tests.execution.harness import Harness, running
from tests.fixtures.waiting import consume, eventually
from tranche.core.broker import EmbeddedBroker
from tranche.execution.models import execution_table as t
from tranche.execution.repository import sent_timestamps
from tranche.execution.sequential import sequential_writer

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

N = 1000


@contextmanager
def statements(app: Harness) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = app.parts.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def _all_sent(app: Harness, ids: list[int], timeout_s: float = 20.0) -> int:
    """How many of ``ids`` have sent_timestamp, waiting for the relay up to ``timeout_s``."""

    async def sent() -> int:
        return await app.count(t.c.id.in_(ids) & t.c.sent_timestamp.is_not(None))

    with contextlib.suppress(AssertionError):
        await eventually(sent, timeout_s, "events stamped as sent", until=len(ids))
    return await sent()


async def _thousand(app: Harness) -> tuple[list[dict[str, Any]], list[str]]:
    items = [item(quantity=i + 1, destination=["ML", "RBC", "JPM"][i % 3]) for i in range(N)]
    with statements(app) as seen:
        r = await app.post("/api/v1/executions/batch", {"executions": items})
    assert r.status_code == 201, r.text[:500]
    body = r.json()
    assert body["successful"] == N
    dtos = [res["execution"] for res in body["results"]]
    assert [d["quantity"] for d in dtos] == [i + 1 for i in range(N)]
    return dtos, seen


async def _check_published(app: Harness, bootstrap: str, dtos: list[dict[str, Any]]) -> None:
    ids = [d["id"] for d in dtos]
    assert len(set(ids)) == N
    assert await _all_sent(app, ids) == N
    records = await consume(bootstrap, app.topic, N)
    by_key = {r.key.decode(): r for r in records if r.key}
    assert set(by_key) == {str(i) for i in ids}
    async with app.parts.db.sessions() as session:
        stored = await sent_timestamps(session, ids)
    for dto in dtos:
        record = by_key[str(dto["id"])]
        event = orjson.loads(record.value)
        # The event carries the instant the relay handed it over, the one in the row.
        assert datetime.fromisoformat(event["sentTimestamp"]) == stored[dto["id"]]
        assert event == dto | {"sentTimestamp": event["sentTimestamp"]}
        assert (
            dict(record.headers)["__TypeId__"]
            == b"org.kasbench.globeco_execution_service.ExecutionDTO"
        )


def _inserts(seen: list[str]) -> int:
    return sum(1 for s in seen if s.startswith("INSERT INTO execution "))


async def test_thousand_on_sqlite(broker: EmbeddedBroker, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bulk.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, max_batch_size=N) as app:
        dtos, seen = await _thousand(app)
        assert _inserts(seen) == 2  # 1 000 rows, chunks of 500: one statement each
        await _check_published(app, broker.bootstrap_servers, dtos)


@pytest.mark.parametrize("method", ["copy", "unnest", "values"])
async def test_thousand_on_postgres(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path, method: str
) -> None:
    async with running(
        postgres_url, broker.bootstrap_servers, tmp_path, max_batch_size=N, insert_method=method
    ) as app:
        assert app.parts.writer.method == method
        dtos, seen = await _thousand(app)
        if method == "copy":
            # COPY is not an INSERT: the sequence reservation marks each chunk instead.
            assert _inserts(seen) == 0
            assert sum("nextval(" in s and "generate_series" in s for s in seen) == 2
        else:
            assert _inserts(seen) == 2
        await _check_published(app, broker.bootstrap_servers, dtos)


async def test_auto_picks_copy_on_postgres_and_values_on_sqlite(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path
) -> None:
    async with running(postgres_url, broker.bootstrap_servers, tmp_path) as app:
        assert app.parts.writer.method == "copy"
    url = f"sqlite+aiosqlite:///{tmp_path / 'auto.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path) as app:
        assert app.parts.writer.method == "values"


BAD = "BADDEST"


async def _refuse_bad_destination(app: Harness) -> None:
    async with app.parts.db.transaction() as s:
        if app.parts.db.dialect == "postgresql":
            await s.execute(
                sa.text(
                    "ALTER TABLE execution ADD CONSTRAINT no_bad_destination "
                    f"CHECK (destination <> '{BAD}')"
                )
            )
        else:
            await s.execute(
                sa.text(
                    "CREATE TRIGGER no_bad_destination BEFORE INSERT ON execution "
                    f"WHEN NEW.destination = '{BAD}' "
                    "BEGIN SELECT RAISE(ABORT, 'destination refused by policy'); END"
                )
            )


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_a_row_the_database_refuses_fails_alone(
    broker: EmbeddedBroker, postgres_factory: Any, tmp_path: Path, db: str
) -> None:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}"
        if db == "sqlite"
        else await postgres_factory("fallback")
    )
    async with running(url, broker.bootstrap_servers, tmp_path) as app:
        await _refuse_bad_destination(app)
        items = [item(), item(destination=BAD), item(), item(destination=BAD), item()]
        fallbacks = "execution_bulk_insert_fallbacks_total"
        before = app.parts.registry.get_sample_value(fallbacks) or 0.0
        r = await app.post("/api/v1/executions/batch", {"executions": items})
        assert r.status_code == 207, r.text
        body = r.json()
        assert [res["status"] for res in body["results"]] == [
            "SUCCESS",
            "FAILED",
            "SUCCESS",
            "FAILED",
            "SUCCESS",
        ]
        for res in (body["results"][1], body["results"][3]):
            assert res["message"].startswith("Database error: ")
            assert "no_bad_destination" in res["message"] or "refused" in res["message"]
            assert "INSERT" not in res["message"]  # no SQL, no parameters
        assert app.parts.registry.get_sample_value(fallbacks) == before + 1
        assert await app.count() == 3
        assert int(await app.scalar("SELECT count(*) FROM outbox")) == 3
        single = await app.post("/api/v1/executions", item(destination=BAD))
        assert single.status_code == 400
        assert single.json()["message"].startswith("Database error: ")
        ids = [res["execution"]["id"] for res in body["results"] if res["execution"]]
        assert await _all_sent(app, ids) == 3


async def test_dynamic_sizing_stays_within_its_bounds(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dynamic.db'}"
    async with running(
        url,
        broker.bootstrap_servers,
        tmp_path,
        max_batch_size=N,
        bulk_insert_batch_size=100,
        enable_dynamic_batch_sizing=True,
        min_chunk_size=60,
        max_chunk_size=400,
        chunk_target_ms=10,
    ) as app:
        items = [item() for _ in range(N)]
        with statements(app) as seen:
            r = await app.post("/api/v1/executions/batch", {"executions": items})
        assert r.status_code == 201
        assert r.json()["successful"] == N
        chunks = _inserts(seen)
        assert N // 400 <= chunks <= -(-N // 60)
        assert 60 <= app.parts.writer.sizer.size() <= 400
        assert app.parts.writer.sizer.last_reason != "initial"


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
async def test_the_sequential_writer_answers_alike_row_by_row(
    broker: EmbeddedBroker, postgres_factory: Any, tmp_path: Path, db: str
) -> None:
    """The original's path, injected by the benchmarks: same answer, one INSERT per item."""
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'seq.db'}"
        if db == "sqlite"
        else await postgres_factory("seq")
    )
    async with running(
        url, broker.bootstrap_servers, tmp_path, batch_writer=sequential_writer
    ) as app:
        items = [item(), item(quantity=-1), item(), item()]
        with statements(app) as seen:
            r = await app.post("/api/v1/executions/batch", {"executions": items})
        assert r.status_code == 207
        body = r.json()
        assert [res["status"] for res in body["results"]] == ["SUCCESS", "FAILED"] + ["SUCCESS"] * 2
        assert _inserts(seen) == 3
        created = [res["execution"] for res in body["results"] if res["execution"]]
        assert all(e["sentTimestamp"] is not None for e in created)
        assert await app.scalar("SELECT count(*) FROM outbox") == 0
        records = await consume(broker.bootstrap_servers, app.topic, 3)
        assert sorted(int(r.key or b"0") for r in records) == [e["id"] for e in created]
