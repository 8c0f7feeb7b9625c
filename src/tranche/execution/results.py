"""What the items of a batch become: each item's result, a chunk's outcome, and the
ExecutionDTO of a row just inserted, rendered once for its event and the answer.

Hand-written rather than a pydantic model per item: a 1 000-item batch builds a
thousand of each, and the DTO's JSON is the event's value and, unchanged, the
answer's ``execution`` (``rendered``), so it is serialised once, not twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from tranche.execution.bulk_insert import NewRow

__all__ = ["ChunkOutcome", "ItemResult", "new_dto"]


@dataclass(slots=True)
class ItemResult:
    """One item's outcome; ``event_id`` is set for executions created by this call.

    ``rendered`` is the DTO's JSON as its event carries it (``sentTimestamp`` null):
    the answer embeds it as long as ``dto["sentTimestamp"]`` is still None, i.e. the
    publish wait did not fill it in.
    """

    index: int
    dto: dict[str, Any] | None = None
    message: str | None = None
    event_id: str | None = None
    rendered: bytes | None = None

    @property
    def ok(self) -> bool:
        return self.dto is not None

    def execution_json(self) -> Any:
        """The ``execution`` of the answer: the rendered JSON while it is still current."""
        dto = self.dto
        if dto is not None and self.rendered is not None and dto["sentTimestamp"] is None:
            return orjson.Fragment(self.rendered)
        return dto


@dataclass(frozen=True)
class ChunkOutcome:
    """One chunk's outcome, as committed with its rows."""

    #: (request index, ExecutionDTO) of the rows created.
    created: list[tuple[int, dict[str, Any]]]
    #: The database's message for each refused row, by request index (as text).
    failed: dict[str, str]
    #: The outbox event id of each created row, in ``created`` order.
    event_ids: list[str]
    #: The checkpoint state after this chunk (everything done so far).
    state: dict[str, Any]
    #: Each created row's DTO JSON (its event's value), in ``created`` order.
    rendered: list[bytes]


_ZERO = orjson.Fragment(b"0.00000000")
#: A new row's ``quantity_filled`` (NewRow's default), rendered once.
_NEW_FILLED: Decimal = NewRow._field_defaults["quantity_filled"]
#: Rendered decimals by the object's identity, each entry holding its Decimal (so the
#: id cannot be reused while the entry lives): validation hands out one quantised object
#: per distinct quantity or price, so a batch's repeated values render once. By identity,
#: not by value: equal decimals of different exponents (``1.5``, ``1.50``) render apart.
_rendered: dict[int, tuple[Decimal, orjson.Fragment]] = {}
_RENDERED_LIMIT = 4096


def _number(value: Decimal | None) -> orjson.Fragment | None:
    if value is None:
        return None
    entry = _rendered.get(id(value))
    if entry is not None and entry[0] is value:
        return entry[1]
    if len(_rendered) >= _RENDERED_LIMIT:
        _rendered.clear()
    fragment = orjson.Fragment(format(value, "f"))
    _rendered[id(value)] = (value, fragment)
    return fragment


def new_dto(row: NewRow, execution_id: int, ticker: str | None) -> dict[str, Any]:
    """The ExecutionDTO of a row just inserted, for rendering: the JSON of what
    :func:`~tranche.execution.schemas.execution_dto` gives for the stored row, built
    straight from the inserted values (one dict a row, not three), its decimals already
    rendered (orjson calls back per Decimal)."""
    filled = row.quantity_filled
    return {
        "id": execution_id,
        "executionStatus": row.execution_status,
        "tradeType": row.trade_type,
        "destination": row.destination,
        "securityId": row.security_id,
        "ticker": ticker,
        "security": {"securityId": row.security_id, "ticker": ticker},
        "quantity": _number(row.quantity),
        "limitPrice": _number(row.limit_price),
        "receivedTimestamp": row.received_timestamp,
        "sentTimestamp": row.sent_timestamp,
        "tradeServiceExecutionId": row.trade_service_execution_id,
        "quantityFilled": _ZERO if filled is None or filled is _NEW_FILLED else _number(filled),
        "averagePrice": _number(row.average_price),
        "version": row.version,
    }
