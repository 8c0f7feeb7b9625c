"""A service process that dies (SIGKILL) after committing an event, before the broker's ack.

``python -m tests.core.outbox.crashing_handoff DB_URL BOOTSTRAP TOPIC``: enqueues one
event, prints its id and commits; the commit hands the event to the producer, whose
render (run at hand-over, before anything goes to the broker) kills the process. So the
event is committed and was never acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import datetime

from prometheus_client import CollectorRegistry

from tests.core.outbox.factories import POOL, kafka, settings
from tranche.core.db import Database
from tranche.core.outbox import Relay, enqueue


async def main(url: str, bootstrap: str, topic: str) -> None:
    db = Database.open("crash-handoff", url, POOL)
    # The rounds poll once a minute: only the commit's hand-off sends within the test.
    relay = Relay(db, kafka(bootstrap), settings(poll_interval_ms=60_000), CollectorRegistry())

    def die(_value: bytes, _at: datetime) -> bytes:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    relay.render(topic, die)
    await relay.start()
    async with db.transaction() as s:
        event_id = await enqueue(s, topic, "k", {"n": 1})
        print(f"event-id={event_id}", flush=True)
    await asyncio.sleep(60)  # the render kills us long before this
    raise SystemExit("the hand-off never ran")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
