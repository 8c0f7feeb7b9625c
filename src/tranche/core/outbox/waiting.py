"""Callers of ``Relay.wait_sent``: what each waits on, and the registry that answers them.

A caller registers the event ids it waits for; each committed round resolves the ids it
sent (with the round's hand-over instant), and the table is asked for the ones this
process is not sending itself (another replica may have sent them).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from datetime import datetime

from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.outbox import store

__all__ = ["SentWaiters", "Waiter"]

log = get_logger(__name__)


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


class SentWaiters:
    """The waiters of one relay, by event id; ``db`` is the relay's outbox database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._by_id: dict[str, list[Waiter]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def sent(self, event_ids: Collection[str], at: datetime | None) -> None:
        """A committed round sent ``event_ids`` (``at``: their hand-over instant, if stored)."""
        # Grouped by waiter: a round's ids mostly belong to one caller, resolved at once.
        hits: dict[Waiter, list[str]] = {}
        by_id = self._by_id
        for event_id in by_id.keys() & set(event_ids):
            for waiter in by_id[event_id]:
                hits.setdefault(waiter, []).append(event_id)
        for waiter, ids in hits.items():
            waiter.resolve(ids, at)

    async def wait(
        self,
        event_ids: Collection[str],
        timeout_s: float,
        poll_s: float,
        held_here: Callable[[Collection[str]], bool],
    ) -> dict[str, datetime | None]:
        """Event id -> hand-over instant (None if found SENT in the table) of those of
        ``event_ids`` confirmed within ``timeout_s``. The table is asked every ``poll_s``,
        and first of all unless every id is being sent by this process (``held_here``)."""
        waiter = Waiter(event_ids)
        if not waiter.remaining:
            return {}
        for event_id in waiter.remaining:
            self._by_id.setdefault(event_id, []).append(waiter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(timeout_s, 0.0)
        check = not held_here(waiter.remaining)
        try:
            while waiter.remaining:
                if check:
                    await self._check_table(waiter)
                check = True
                left = deadline - loop.time()
                if not waiter.remaining or left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.done.wait(), min(left, poll_s))
        finally:
            by_id = self._by_id
            for event_id in event_ids:
                waiters = by_id.get(event_id)
                if waiters is None:
                    continue
                if len(waiters) == 1:  # the common case: this caller alone waits for it
                    if waiters[0] is waiter:
                        del by_id[event_id]
                    continue
                with contextlib.suppress(ValueError):
                    waiters.remove(waiter)
        return waiter.found

    async def _check_table(self, waiter: Waiter) -> None:
        try:
            async with self._db.sessions() as session:
                waiter.resolve(await store.sent_among(session, waiter.remaining))
        except Exception as exc:
            log.warning("outbox_wait_sent_check_failed", error=f"{type(exc).__name__}: {exc}")
