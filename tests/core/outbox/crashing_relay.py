"""A relay process that dies (SIGKILL) after the broker acknowledged, before marking SENT.

``python -m tests.core.outbox.crashing_relay DB_URL BOOTSTRAP TOPIC``: the
after-send hook runs inside the marking transaction, so killing the process
there is exactly "published but not yet committed as SENT".
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from tests.core.outbox.factories import POOL, kafka, settings
from tranche.core.db import Database
from tranche.core.outbox import Relay, SentEvent


async def main(url: str, bootstrap: str, topic: str) -> None:
    db = Database.open("crash", url, POOL)
    # One worker, so one round claims all the rows: with two, SKIP LOCKED may split
    # them and the hook would kill the process before the second half was published.
    relay = Relay(db, kafka(bootstrap), settings(relay_concurrency=1), CollectorRegistry())

    async def die(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    relay.on_sent(topic, die)
    await relay.start()
    await asyncio.sleep(60)  # the hook kills us long before this
    raise SystemExit("the relay never published")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
