"""The ``orders`` events: one per created execution, through the transactional outbox.

Key = the execution id as a string (so one execution's events stay on one
partition), value = the ExecutionDTO JSON as the REST API renders it, header
``__TypeId__`` = the Java class name spring-kafka's JsonSerializer used to send,
so Spring consumers deserialise it unchanged. The event is written in the
transaction that creates the row, so it is published if and only if the row
committed (the original sent before commit, its bug C12).

``sentTimestamp`` is the instant the relay hands the event to the producer: the
value is stored with ``"sentTimestamp":null`` and :func:`stamp_sent` (the relay's
render for ``orders``) fills it in at hand-over; :func:`sent_hook` writes the same
instant to the row once the broker acknowledged, so the event, the row and the REST
API agree. A redelivered duplicate (a relay that died before its commit) carries
its own, later hand-over instant; the row keeps the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxEvent, SentEvent
from tranche.execution import repository
from tranche.execution.schemas import dumps

__all__ = ["TYPE_ID_HEADER", "order_event", "sent_hook", "stamp_sent"]

TYPE_ID_HEADER = "__TypeId__"
#: orjson writes keys as given, without spaces: the field as it stands in a stored value.
#: Inside a JSON string a quote is escaped, so these bytes can only be the key itself.
_UNSENT = b'"sentTimestamp":null'
log = get_logger(__name__)


def order_event(topic: str, type_id: str, dto: Mapping[str, Any]) -> OutboxEvent:
    return OutboxEvent(
        topic=topic,
        key=str(dto["id"]),
        value=dumps(dto),
        headers={TYPE_ID_HEADER: type_id, "content-type": "application/json"},
    )


def stamp_sent(value: bytes, at: datetime) -> bytes:
    """The stored ExecutionDTO with ``sentTimestamp`` = ``at``, rendered as REST renders it."""
    return value.replace(_UNSENT, b'"sentTimestamp":' + dumps(at), 1)


def sent_hook() -> Callable[[AsyncSession, Sequence[SentEvent]], Any]:
    """The relay's after-send hook for ``orders``: ``sent_timestamp`` = each event's
    hand-over instant (the one :func:`stamp_sent` put in it), in bulk UPDATEs."""

    async def mark(session: AsyncSession, events: Sequence[SentEvent]) -> None:
        by_instant: dict[datetime, list[int]] = {}
        for event in events:
            try:
                by_instant.setdefault(event.sent_at, []).append(int(event.key or ""))
            except ValueError:
                log.warning("orders_event_without_execution_id", key=event.key)
        for at, ids in by_instant.items():
            await repository.mark_sent(session, ids, at)

    return mark
