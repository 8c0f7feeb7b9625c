"""What a caller of ``Relay.wait_sent`` waits on: the ids still to be confirmed, and those found."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import datetime

__all__ = ["Waiter"]


class Waiter:
    """Callers waiting for some event ids to be SENT (``Relay.wait_sent``)."""

    def __init__(self, ids: Collection[str]) -> None:
        self.remaining = set(ids)
        #: Event id -> its hand-over instant when this process sent it (None: found SENT
        #: in the table, sent by another replica or before this wait began).
        self.found: dict[str, datetime | None] = {}
        self.done = asyncio.Event()

    def resolve(self, ids: Collection[str], at: datetime | None = None) -> None:
        hit = self.remaining.intersection(ids)
        if hit:
            self.remaining -= hit
            self.found.update(dict.fromkeys(hit, at))
            if not self.remaining:
                self.done.set()
