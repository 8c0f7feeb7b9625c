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

__all__ = [
    "TYPE_ID_HEADER",
    "order_event",
    "order_events",
    "order_headers",
    "render_each",
    "sent_hook",
    "stamp_sent",
]

TYPE_ID_HEADER = "__TypeId__"
#: orjson writes keys as given, without spaces: the field as it stands in a stored value.
#: Inside a JSON string a quote is escaped, so these bytes can only be the key itself.
_UNSENT = b'"sentTimestamp":null'
log = get_logger(__name__)


def order_headers(type_id: str) -> dict[str, str | bytes]:
    return {TYPE_ID_HEADER: type_id, "content-type": "application/json"}


def order_event(topic: str, type_id: str, dto: Mapping[str, Any]) -> OutboxEvent:
    return OutboxEvent(topic, str(dto["id"]), dumps(dto), order_headers(type_id))


def order_events(
    topic: str, headers: Mapping[str, str | bytes], dtos: Sequence[Mapping[str, Any]]
) -> tuple[list[OutboxEvent], list[bytes]]:
    """The events of a chunk's new executions (one headers mapping shared by all, as the
    outbox only reads it) and each one's value, the DTO's JSON, for the answer to reuse."""
    values = render_each(dtos)
    events = [
        OutboxEvent(topic, str(dto["id"]), value, headers)
        for dto, value in zip(dtos, values, strict=True)
    ]
    return events, values


#: Between two ExecutionDTOs in a rendered list. A quote inside a JSON string is always
#: escaped (``\"``), so these bytes, with their raw quotes, occur nowhere else.
_BETWEEN = b'},{"id":'


def render_each(dtos: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """``[dumps(dto) for dto in dtos]``, from one ``dumps`` of the list cut at each DTO's
    start: orjson's cost is mostly per call (about 7x a DTO's share of a list's)."""
    if len(dtos) < 2:
        return [dumps(dto) for dto in dtos]
    parts = dumps(dtos)[1:-1].split(_BETWEEN)
    if len(parts) != len(dtos):  # a DTO not of the expected shape: render one by one
        return [dumps(dto) for dto in dtos]
    first, *middle, last = parts
    return [first + b"}", *(b'{"id":' + part + b"}" for part in middle), b'{"id":' + last]


def stamp_sent(value: bytes, at: datetime) -> bytes:
    """The stored ExecutionDTO with ``sentTimestamp`` = ``at``, rendered as REST renders it."""
    return value.replace(_UNSENT, b'"sentTimestamp":' + dumps(at), 1)


def sent_hook() -> Callable[[AsyncSession, Sequence[SentEvent]], Any]:
    """The relay's after-send hook for ``orders``: ``sent_timestamp`` = each event's
    hand-over instant (the one :func:`stamp_sent` put in it), in bulk UPDATEs.

    It reads only the key and that instant, so it is registered ``ahead``: its UPDATE
    runs while the broker's acks are awaited, and is undone unless all were delivered."""

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
