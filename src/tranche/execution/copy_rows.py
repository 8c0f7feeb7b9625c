"""A chunk's execution rows as the data of one binary ``COPY`` (:mod:`tranche.core.pgcopy`).

Built here instead of by asyncpg's ``copy_records_to_table``, whose codecs encode
every value of every row (13 columns, a timestamp among them: ~2 ms of CPU per 500
rows) while a batch repeats a few texts, its amounts and one timestamp: each
distinct value is encoded once, a row is a join of encoded fields.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tranche.core.pgcopy import HEADER, NULL, TRAILER, FieldCache, encode_field

if TYPE_CHECKING:
    from tranche.execution.bulk_insert import NewRow

__all__ = ["copy_data"]

#: A row's field count (``len(bulk_insert.COLUMNS)``: the id and NewRow's twelve values),
#: then its id (``int4``: length 4, the value).
_ROW_START = struct.Struct(">hii").pack
_INT4 = struct.Struct(">ii").pack
_FIELDS = 13
_LIMIT = 4096
#: The four texts that lead a row, by value (a batch repeats a few statuses, trade types,
#: destinations and securities); the other values by identity: validation hands out one
#: object per distinct amount, and a chunk's rows share one timestamp.
_heads: dict[tuple[str, ...], bytes] = {}
_fields = FieldCache(_LIMIT)


def _encode_head(texts: tuple[str, ...]) -> bytes:
    if len(_heads) >= _LIMIT:
        _heads.clear()
    encoded = _heads[texts] = b"".join(encode_field(text) for text in texts)
    return encoded


def copy_data(rows: Sequence[NewRow], ids: Sequence[int]) -> bytes:
    """The rows with their ids, in ``COLUMNS`` order, as ``COPY … (FORMAT binary)`` data."""
    head, field, encode = _heads.get, _fields.encoded.get, _fields.encode
    parts = [HEADER]
    append = parts.append
    for row, row_id in zip(rows, ids, strict=True):
        texts = row[:4]
        quantity, limit_price, received, tsid, version, filled, average, sent = row[4:]
        append(_ROW_START(_FIELDS, 4, row_id))
        append(head(texts) or _encode_head(texts))
        append(field(id(quantity)) or encode(quantity))
        append(field(id(limit_price)) or encode(limit_price))
        append(field(id(received)) or encode(received))
        append(field(id(sent)) or encode(sent))
        append(field(id(version)) or encode(version))
        append(NULL if tsid is None else _INT4(4, tsid))
        append(field(id(filled)) or encode(filled))
        append(field(id(average)) or encode(average))
    append(TRAILER)
    return b"".join(parts)
