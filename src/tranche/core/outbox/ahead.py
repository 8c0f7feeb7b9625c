"""After-send hooks run while the broker's acks are awaited, kept only if they all came.

A hook registered with ``relay.on_sent(topic, hook, ahead=True)`` needs nothing the
ack tells (the execution service's stores the hand-over instant, known before the
records go out), so its writes need not wait for the broker: the round runs it in a
savepoint of its transaction while the producer waits for the acks, the database
and the broker working at the same time instead of one after the other.

Its writes are kept only when every event it was given was acknowledged; otherwise
(a rejected record, an unreachable broker) the savepoint is rolled back and the
hook runs again after the acks for the events that were delivered, as a hook that
is not ahead always does. Either way it commits in the transaction that marks the
rows SENT, so the guarantees are unchanged: nothing it writes outlives a round that
did not record the ack. The events it is given ahead have ``partition`` and
``offset`` -1 (:data:`NOT_YET`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

from tranche.core.logging import get_logger
from tranche.core.outbox.dispatch import (
    NOT_YET,
    Beside,
    Hook,
    RoundResult,
    SentEvent,
    has_writes,
    record_round,
)
from tranche.core.outbox.store import Row

__all__ = ["NOT_YET", "AheadHooks", "Publish", "publish_and_record"]

log = get_logger(__name__)


class AheadHooks:
    """One round's ahead hooks, in ``session``'s transaction."""

    def __init__(self, session: AsyncSession, hooks: Mapping[str, Sequence[Hook]]) -> None:
        self._session = session
        self._hooks = hooks
        self._savepoint: AsyncSessionTransaction | None = None
        self._given: set[str] = set()
        self._ran: list[Hook] = []

    async def run(self, events: Sequence[SentEvent]) -> None:
        """Run the hooks of ``events``' topics in one savepoint; a hook that raises undoes
        them all (they run again after the acks, where a failure is counted)."""
        by_topic: dict[str, list[SentEvent]] = {}
        for ev in events:
            if ev.topic in self._hooks:
                by_topic.setdefault(ev.topic, []).append(ev)
        if not by_topic:
            return
        savepoint = await self._session.begin_nested()
        ran: list[Hook] = []
        try:
            for topic, given in by_topic.items():
                for hook in self._hooks[topic]:
                    await hook(self._session, given)
                    ran.append(hook)
        except Exception:
            log.warning("outbox_hook_ahead_failed", topics=sorted(by_topic), exc_info=True)
            await savepoint.rollback()
            return
        self._savepoint = savepoint
        self._given = {ev.event_id for given in by_topic.values() for ev in given}
        self._ran = ran

    async def settle(self, res: RoundResult) -> list[Hook]:
        """Keep the hooks' writes if every event they were given was delivered, else
        undo them; the hooks whose work is done (``record_round`` skips them)."""
        savepoint, self._savepoint = self._savepoint, None
        if savepoint is None:
            return []
        if self._given.issubset(res.sent_ids):
            await savepoint.commit()
            return self._ran
        await savepoint.rollback()
        return []


Publish = Callable[[Sequence[Row], Beside | None], Awaitable[RoundResult]]


async def publish_and_record(
    session: AsyncSession,
    rows: Sequence[Row],
    publish: Publish,
    hooks: Mapping[str, Sequence[Hook]],
    ahead: Mapping[str, Sequence[Hook]],
    clock: Callable[[], datetime],
    premarked: bool,
) -> RoundResult:
    """A locking round after its claim: publish ``rows`` (``ahead`` hooks running beside
    the acks), then record the outcome and commit — or roll back if nothing is to be
    written (the broker was unreachable: everything stays as it was)."""
    early = AheadHooks(session, ahead) if ahead else None
    res = await publish(rows, early.run if early is not None else None)
    if has_writes(res):
        done = await early.settle(res) if early is not None else []
        await record_round(session, res, hooks, clock(), premarked, done)
        await session.commit()
    else:
        await session.rollback()
    return res
