"""At-least-once: a relay killed after publishing, before marking SENT, sends again on restart."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from tests.core.outbox.factories import header, rows_by_status, running_relay
from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume
from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue_many

ROOT = Path(__file__).resolve().parents[3]


async def test_relay_killed_between_publish_and_commit_resends_with_the_same_event_id(
    pg_db: Database, postgres_url: str, kafka_bootstrap: str
) -> None:
    topic = unique_topic("crash")
    async with pg_db.transaction() as s:
        ids = await enqueue_many(s, [OutboxEvent(topic, f"k{i}", {"i": i}) for i in range(3)])

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.core.outbox.crashing_relay",
        postgres_url,
        kafka_bootstrap,
        topic,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]

    first = await consume(kafka_bootstrap, topic, expected=3)
    assert sorted((header(r, "event-id") or b"").decode() for r in first) == sorted(ids)
    assert await rows_by_status(pg_db, topic) == {"PENDING": 3}  # the SENT mark died with it

    async with running_relay(pg_db, kafka_bootstrap) as relay:
        assert await relay.wait_sent(ids, timeout_s=30) == set(ids)

    everything = await consume(kafka_bootstrap, topic, expected=6)
    copies = Counter((header(r, "event-id") or b"").decode() for r in everything)
    assert copies == dict.fromkeys(ids, 2)
    # The duplicate is the same record: same key and value, so consumers can drop it by id.
    by_id: dict[str, set[tuple[bytes | None, bytes]]] = {}
    for r in everything:
        by_id.setdefault((header(r, "event-id") or b"").decode(), set()).add((r.key, r.value))
    assert all(len(v) == 1 for v in by_id.values())
    assert await rows_by_status(pg_db, topic) == {"SENT": 3}
