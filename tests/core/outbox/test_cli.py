"""`tranche outbox status|replay`: what an operator sees and the errors they get."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from tranche.cli import app
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue_many, outbox_table


async def _invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, ["outbox", *args])


async def _seed(db: Database) -> None:
    """orders: 2 PENDING (oldest an hour old), 1 SENT, 2 DEAD (one old, one new); fills: 1 DEAD."""
    t = outbox_table
    now = datetime.now(UTC)
    async with db.transaction() as s:
        ids = await enqueue_many(
            s,
            [OutboxEvent("orders", str(i), {"i": i}) for i in range(5)]
            + [OutboxEvent("fills", "f", {"f": 1})],
        )
        changes = [
            (ids[0], {"created_at": now - timedelta(hours=1)}),
            (ids[2], {"status": "SENT"}),
            (
                ids[3],
                {"status": "DEAD", "last_error": "old", "created_at": now - timedelta(days=2)},
            ),
            (ids[4], {"status": "DEAD", "last_error": "KafkaError: rejected"}),
            (ids[5], {"status": "DEAD", "last_error": "too large"}),
        ]
        for event_id, values in changes:
            await s.execute(update(t).where(t.c.event_id == event_id).values(**values))


async def test_status_counts_per_topic_with_the_oldest_pending_age(
    pg_db: Database, postgres_url: str
) -> None:
    await _seed(pg_db)
    result = await _invoke("status", "--url", postgres_url, "--json")
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert (report["pending"], report["dead"]) == (2, 3)
    topics = {t["topic"]: t for t in report["topics"]}
    assert (topics["orders"]["pending"], topics["orders"]["sent"], topics["orders"]["dead"]) == (
        2,
        1,
        2,
    )
    assert 3500 < topics["orders"]["oldest_pending_age_s"] < 3700
    assert topics["orders"]["last_dead_error"] == "KafkaError: rejected"
    assert topics["fills"]["oldest_pending_age_s"] is None

    table = await _invoke("status", "--url", postgres_url)
    assert table.exit_code == 0
    assert "orders" in table.output and "60.0m" in table.output
    assert "pending 2 · dead 3" in table.output


async def test_replay_filters_by_topic_and_creation_time(
    pg_db: Database, postgres_url: str
) -> None:
    await _seed(pg_db)
    since = (datetime.now(UTC) - timedelta(days=1)).replace(tzinfo=None).isoformat()
    result = await _invoke("replay", "--url", postgres_url, "--topic", "orders", "--since", since)
    assert result.exit_code == 0, result.output
    assert "re-queued 1 dead event of topic orders created since" in result.output
    report = orjson.loads((await _invoke("status", "--url", postgres_url, "--json")).output)
    topics = {t["topic"]: t for t in report["topics"]}
    assert (topics["orders"]["pending"], topics["orders"]["dead"]) == (3, 1)
    assert topics["fills"]["dead"] == 1

    everything = await _invoke("replay", "--url", postgres_url)
    assert "re-queued 2 dead events" in everything.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status"], "give exactly one of --service NAME or --url URL"),
        (["status", "--service", "x", "--url", "sqlite://"], "give exactly one of"),
        (["status", "--service", "nosuch"], "unknown service 'nosuch'"),
        (["replay", "--url", "sqlite://", "--since", "yesterday"], "--since: 'yesterday' is not"),
    ],
)
async def test_usage_errors_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = await _invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


async def test_an_unreachable_database_exits_1_without_showing_the_password() -> None:
    result = await _invoke("status", "--url", "postgresql://bob:s3cret@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert "s3cret" not in result.output
    assert "bob:***@127.0.0.1:1/db" in result.output


async def test_a_database_without_the_table_says_so(sqlite_url: str) -> None:
    result = await _invoke("status", "--url", sqlite_url)
    assert result.exit_code == 1
    assert "no such table: outbox" in result.output
