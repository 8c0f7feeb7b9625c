"""PostgreSQL's binary ``COPY`` format, for rows built faster than asyncpg's records.

asyncpg's ``copy_records_to_table`` encodes every value of every row through its
codecs; a timestamp costs most (it is compared with ``datetime.max`` and converted to
UTC each time: ~7 µs of CPU a row for the outbox's two). Bulk writers repeat most
values (one timestamp, a few texts and amounts per batch), so they encode each
distinct value once with :func:`encode_field` (or a :class:`FieldCache`) and join the
fields; ``COPY … (FORMAT binary)`` then takes the bytes as they are. Binary rather
than COPY's text format: the text format cost the backend ~25 % more CPU per row
(parsing timestamps and numbers).

Layout: :data:`HEADER`, then per row the number of fields (int16) and each field as
its length (int32, -1 for NULL) and the type's binary form (``int4``, ``numeric`` and
``timestamptz`` as their ``send`` functions write them, text and ``varchar`` as UTF-8,
``bytea`` as is), then :data:`TRAILER`.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["HEADER", "NULL", "TRAILER", "FieldCache", "encode_field", "length"]

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
NULL = struct.pack(">i", -1)
#: A field's length prefix (int32).
length = struct.Struct(">i").pack
_INT4 = struct.Struct(">ii")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NUMERIC_NEGATIVE = 0x4000
_NUMERIC_SPECIAL = {"n": 0xC000, "N": 0xC000, "F": 0xD000}


def _numeric(value: Decimal) -> bytes:
    """``numeric_send``: digit count, weight, sign and display scale (int16 each), then
    the digits in base 10 000, the weight being the power of 10 000 of the first."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN, sNaN or infinity
        flag = 0xF000 if exponent == "F" and sign else _NUMERIC_SPECIAL[exponent]
        return struct.pack(">hhHh", 0, 0, flag, 0)
    scale = max(0, -exponent)
    text = "".join(map(str, digits)) + "0" * max(0, exponent) + "0" * (-scale % 4)
    text = "0" * (-len(text) % 4) + text
    groups = [int(text[i : i + 4]) for i in range(0, len(text), 4)]
    weight = len(groups) - (scale + 3) // 4 - 1
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    flags = _NUMERIC_NEGATIVE if sign and groups else 0
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, flags, scale, *groups)


def _timestamptz(value: datetime) -> bytes:
    """``timestamptz_send``: microseconds since 2000-01-01 UTC (as asyncpg: a naive value
    is taken as local time)."""
    delta = value.astimezone(UTC) - _PG_EPOCH
    return struct.pack(">q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def encode_field(value: object) -> bytes:
    """One field, length included: ``str`` for text columns, ``bytes`` for ``bytea``,
    ``int`` for ``integer`` (int4), ``Decimal`` for ``numeric``, ``datetime`` for
    ``timestamptz``; None is NULL."""
    if value is None:
        return NULL
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes):
        data = value
    elif isinstance(value, int):
        return _INT4.pack(4, value)
    elif isinstance(value, Decimal):
        data = _numeric(value)
    elif isinstance(value, datetime):
        data = _timestamptz(value)
    else:
        raise TypeError(f"cannot COPY a {type(value).__name__}")
    return length(len(data)) + data


class FieldCache:
    """Encoded fields by the object's identity, each entry holding its object (so the id
    cannot be reused while the entry lives); started afresh past ``limit`` entries.

    By identity, not value: equal decimals of different exponents (``1.5``, ``1.50``)
    encode apart, and a lookup is one dict access (``encoded.get(id(value))``)."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.encoded: dict[int, bytes] = {id(None): NULL}
        self._held: dict[int, object] = {}

    def encode(self, value: object) -> bytes:
        if len(self._held) >= self.limit:
            self._held.clear()
            self.encoded.clear()
            self.encoded[id(None)] = NULL
        self._held[id(value)] = value
        encoded = self.encoded[id(value)] = encode_field(value)
        return encoded
