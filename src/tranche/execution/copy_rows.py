"""A chunk's execution rows as the data of one binary ``COPY`` (PostgreSQL's own format).

Built here instead of by asyncpg's ``copy_records_to_table``, whose codecs encode
every value of every row: 13 columns, a timestamp among them (asyncpg compares each
with ``datetime.max`` and converts it to UTC: most of ~2 ms of CPU per 500 rows),
while a batch repeats a few texts, its amounts and one timestamp. Here each distinct
value is encoded once and a row is a join of encoded fields. Binary rather than
COPY's text format: text cost the backend ~25 % more CPU per row (parsing the
timestamp and the numbers), about what it saved here.

Field layout (PostgreSQL's ``COPY … (FORMAT binary)``): a signature and two zero
words, then per row the number of fields (int16) and each field as its length (int32,
-1 for NULL) and the type's binary form (``int4``/``numeric``/``timestamptz``
``send`` functions; text as UTF-8), then -1 (int16).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tranche.execution.bulk_insert import NewRow

__all__ = ["copy_data", "encode_field"]

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_NULL = struct.pack(">i", -1)
#: A row's field count, then its id (``int4``: length 4, the value).
_ROW_START = struct.Struct(">hii")
_INT4 = struct.Struct(">ii")
#: ``len(bulk_insert.COLUMNS)``: the id and NewRow's twelve values.
_FIELDS = 13
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_NUMERIC_NAN = 0xC000
_NUMERIC_NEG = 0x4000
_NUMERIC_INF = {"F": 0xD000, "n": _NUMERIC_NAN}


def _numeric(value: Decimal) -> bytes:
    """``numeric_send``: digit count, weight, sign and display scale (int16 each), then
    the digits in base 10 000, the weight being the power of 10 000 of the first."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN, sNaN (n, N) or infinity (F)
        flag = _NUMERIC_INF.get(exponent, _NUMERIC_NAN)
        if exponent == "F" and sign:
            flag = 0xF000
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
    flags = _NUMERIC_NEG if sign and groups else 0
    return struct.pack(f">hhHh{len(groups)}h", len(groups), weight, flags, scale, *groups)


def _timestamptz(value: datetime) -> bytes:
    """``timestamptz_send``: microseconds since 2000-01-01 UTC (as asyncpg: a naive value
    is taken as local time)."""
    delta = value.astimezone(UTC) - _PG_EPOCH
    return struct.pack(">q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def encode_field(value: Any) -> bytes:
    """One field: its length and binary form, or NULL's length."""
    if value is None:
        return _NULL
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, Decimal):
        data = _numeric(value)
    elif isinstance(value, datetime):
        data = _timestamptz(value)
    elif isinstance(value, int):
        return _INT4.pack(4, value)
    else:
        raise TypeError(f"cannot COPY a {type(value).__name__}")
    return struct.pack(">i", len(data)) + data


#: Encoded fields, so that each encodes once for many rows and requests: the four texts
#: that lead a row by value (a batch repeats a few statuses, destinations and
#: securities), the others by the object's identity, each of those entries holding its
#: object (so the id cannot be reused while the entry lives). Validation hands out one
#: object per distinct amount and a chunk's rows share one timestamp; by identity, equal
#: decimals of different exponents (``1.5``, ``1.50``) still encode apart.
_heads: dict[tuple[str, ...], bytes] = {}
_encoded: dict[int, bytes] = {id(None): _NULL}
_held: dict[int, object] = {}
_LIMIT = 4096


def _encode_head(texts: tuple[str, ...]) -> bytes:
    if len(_heads) >= _LIMIT:
        _heads.clear()
    encoded = _heads[texts] = b"".join(encode_field(text) for text in texts)
    return encoded


def _encode(value: object) -> bytes:
    if len(_held) >= _LIMIT:
        _held.clear()
        _encoded.clear()
        _encoded[id(None)] = _NULL
    _held[id(value)] = value
    encoded = _encoded[id(value)] = encode_field(value)
    return encoded


def copy_data(rows: Sequence[NewRow], ids: Sequence[int]) -> bytes:
    """The rows with their ids, in ``COLUMNS`` order, as ``COPY … (FORMAT binary)`` data."""
    head, other, start, int4 = _heads.get, _encoded.get, _ROW_START.pack, _INT4.pack
    parts = [_HEADER]
    append = parts.append
    for row, row_id in zip(rows, ids, strict=True):
        texts = row[:4]
        quantity, limit_price, received, tsid, version, filled, average, sent = row[4:]
        append(start(_FIELDS, 4, row_id))
        append(head(texts) or _encode_head(texts))
        append(other(id(quantity)) or _encode(quantity))
        append(other(id(limit_price)) or _encode(limit_price))
        append(other(id(received)) or _encode(received))
        append(other(id(sent)) or _encode(sent))
        append(other(id(version)) or _encode(version))
        append(_NULL if tsid is None else int4(4, tsid))
        append(other(id(filled)) or _encode(filled))
        append(other(id(average)) or _encode(average))
    append(_TRAILER)
    return b"".join(parts)
