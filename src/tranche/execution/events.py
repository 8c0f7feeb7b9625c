"""The ``orders`` events: one per created execution, through the transactional outbox.

Key = the execution id as a string (so one execution's events stay on one
partition), value = the ExecutionDTO JSON as the REST API renders it, header
``__TypeId__`` = the Java class name spring-kafka's JsonSerializer used to send,
so Spring consumers deserialise it unchanged. The event is written in the
transaction that creates the row, so it is published if and only if the row
committed (the original sent before commit, its bug C12). ``sentTimestamp`` is
null in the event: it is stamped on the row when the broker acknowledges the
event (:func:`on_sent`), which is after the value was fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import Clock, utc_now
from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxEvent, SentEvent
from tranche.execution import repository
from tranche.execution.schemas import dumps

__all__ = ["TYPE_ID_HEADER", "order_event", "sent_hook"]

TYPE_ID_HEADER = "__TypeId__"
log = get_logger(__name__)


def order_event(topic: str, type_id: str, dto: Mapping[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        topic=topic,
        key=str(dto["id"]),
        value=dumps(dto),
        headers={TYPE_ID_HEADER: type_id, "content-type": "application/json"},
    )


def sent_hook(
    clock: Clock = utc_now,
) -> Callable[[AsyncSession, Sequence[SentEvent]], Any]:
    """The relay's after-send hook for ``orders``: one bulk UPDATE of ``sent_timestamp``."""

    async def mark(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        ids: list[int] = []
        for event in events:
            try:
                ids.append(int(event.key or ""))
            except ValueError:
                log.warning("orders_event_without_execution_id", key=event.key)
        if ids:
            await repository.mark_sent(session, ids, clock())

    return mark
