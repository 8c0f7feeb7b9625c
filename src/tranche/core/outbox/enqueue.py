"""Writing events into the outbox, inside the caller's transaction.

The value is serialised here, once: bytes as given, text as UTF-8, anything
JSON-able with orjson (``Decimal`` as an exact JSON number). A value orjson
cannot serialise does not fail the caller's transaction — the business rows
commit and the event is kept with a ``defect``, which sends it to the
dead-letter topic and shows it in ``tranche outbox status``. Malformed
arguments (topic name, key length, header names) are programming errors and
raise ``ValueError`` naming the field before anything is written.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import utc_now
from tranche.core.logging import get_logger
from tranche.core.multirow import insert_rows
from tranche.core.outbox import wake
from tranche.core.outbox.table import MAX_KEY, MAX_TOPIC, OutboxStatus, outbox_table
from tranche.core.pgcopy import HEADER, NULL, TRAILER, FieldCache, length

__all__ = [
    "COPY_COLUMNS",
    "EVENT_ID_HEADER",
    "OutboxEvent",
    "decode_headers",
    "encode_headers",
    "enqueue",
    "enqueue_many",
    "serialise_value",
]

log = get_logger(__name__)

EVENT_ID_HEADER = "event-id"
_TOPIC_RE = re.compile(r"[A-Za-z0-9._-]+")
_valid_topics: set[str] = set()

Value = bytes | str | Mapping[str, Any] | list[Any]


class OutboxEvent(NamedTuple):
    """One event for :func:`enqueue_many` (a tuple: a batch builds one per row, and a
    frozen dataclass costs a ``__setattr__`` call per field)."""

    topic: str
    key: str | None
    value: Value
    headers: Mapping[str, str | bytes] | None = None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal) and obj.is_finite():
        return orjson.Fragment(str(obj))
    raise TypeError(f"Type is not JSON serializable: {type(obj).__name__}")


def serialise_value(value: Any) -> tuple[bytes, str | None]:
    """The bytes to publish, and the reason they can never be published (None if fine)."""
    if isinstance(value, bytes):
        return value, None
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value), None
    if isinstance(value, str):
        return value.encode(), None
    if value is None:
        return b"", "value is None (tombstones are not supported)"
    try:
        return orjson.dumps(value, default=_json_default), None
    except (TypeError, orjson.JSONEncodeError) as exc:
        # Keep something an operator can read on the dead-letter topic.
        return repr(value).encode(errors="replace"), f"unserialisable value: {exc}"


def encode_headers(headers: Mapping[str, str | bytes] | None, field: str = "headers") -> str | None:
    if not headers:
        return None
    out: dict[str, Any] = {}
    for name, val in headers.items():
        if not isinstance(name, str) or not name or len(name) > 255:
            raise ValueError(f"{field}: header names must be 1-255 characters (got {name!r})")
        if name.lower() == EVENT_ID_HEADER:
            raise ValueError(f"{field}: '{EVENT_ID_HEADER}' is set by the outbox")
        if isinstance(val, str):
            out[name] = val
        elif isinstance(val, (bytes, bytearray)):
            try:
                out[name] = bytes(val).decode()
            except UnicodeDecodeError:
                out[name] = {"b64": base64.b64encode(val).decode()}
        else:
            raise ValueError(f"{field}[{name!r}]: must be str or bytes (got {type(val).__name__})")
    return orjson.dumps(out).decode()


def decode_headers(text: str | None) -> list[tuple[str, bytes]]:
    if not text:
        return []
    raw: dict[str, Any] = orjson.loads(text)
    return [
        (name, val.encode() if isinstance(val, str) else base64.b64decode(val["b64"]))
        for name, val in raw.items()
    ]


def _check_topic(topic: Any, field: str) -> None:
    if (
        not isinstance(topic, str)
        or not _TOPIC_RE.fullmatch(topic)
        or topic in (".", "..")
        or len(topic) > MAX_TOPIC
    ):
        raise ValueError(
            f"{field}: {topic!r} is not a valid Kafka topic name "
            f"(letters, digits, '.', '_', '-'; at most {MAX_TOPIC} characters)"
        )
    _valid_topics.add(topic)


#: The variant nibble of a version 4 UUID (``10xx``) for each random hex digit.
_VARIANT = {f"{i:x}": f"{8 | (i & 3):x}" for i in range(16)}


def new_event_ids(n: int) -> list[str]:
    """``n`` random (version 4) UUID strings: one ``urandom`` call and one hex conversion
    instead of ``n`` uuid4(); the version and variant digits are set in the text."""
    h = os.urandom(16 * n).hex()
    variant = _VARIANT
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-"
        f"{variant[h[i + 16]]}{h[i + 17 : i + 20]}-{h[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]


_PENDING = OutboxStatus.PENDING.value
#: The outbox columns an enqueue writes, in COPY order (the benchmark's floor uses them).
COPY_COLUMNS = (
    "event_id",
    "topic",
    "key",
    "payload",
    "headers",
    "status",
    "attempts",
    "defect",
    "created_at",
    "available_at",
)
_COPY_THRESHOLD = 64


def _row(
    event: OutboxEvent,
    event_id: str,
    now: datetime,
    prefix: str,
    encoded: dict[int, str | None],
) -> tuple[Any, ...]:
    """The row's values in ``COPY_COLUMNS`` order; ``prefix`` names the event in errors.

    ``encoded`` caches the headers' JSON by the mapping's identity for one call of
    :func:`enqueue_many`, where a chunk's events commonly share one headers mapping
    (encoding it per event was a tenth of a 1 000-item batch's CPU)."""
    topic, key = event.topic, event.key
    if topic not in _valid_topics:
        _check_topic(topic, f"{prefix}topic")
    if key is not None and (not isinstance(key, str) or len(key) > MAX_KEY):
        raise ValueError(f"{prefix}key: must be None or a string of at most {MAX_KEY} characters")
    payload, defect = serialise_value(event.value)
    if defect is not None:
        log.error("outbox_event_defective", topic=topic, event_id=event_id, defect=defect)
    headers: str | None = None
    if event.headers:
        # Never None once encoded: a non-empty mapping encodes to a JSON object.
        headers = encoded.get(id(event.headers))
        if headers is None:
            headers = encoded[id(event.headers)] = encode_headers(event.headers, f"{prefix}headers")
    return (event_id, topic, key, payload, headers, _PENDING, 0, defect, now, now)


async def enqueue(
    session: AsyncSession,
    topic: str,
    key: str | None,
    value: Value,
    headers: Mapping[str, str | bytes] | None = None,
) -> str:
    """Add one event to ``session``'s transaction; returns its event id."""
    (event_id,) = new_event_ids(1)
    row = _row(OutboxEvent(topic, key, value, headers), event_id, utc_now(), "", {})
    await session.execute(insert(outbox_table), [dict(zip(COPY_COLUMNS, row, strict=True))])
    wake.mark(session, (row,))
    return event_id


async def enqueue_many(session: AsyncSession, events: Sequence[OutboxEvent]) -> list[str]:
    """Add ``events`` in ``session``'s transaction with one statement; ids in input order.

    PostgreSQL gets ``COPY`` from 64 events up (a third faster than an executemany
    for 100, and more for larger lists); MariaDB one multi-row ``INSERT`` whose payloads
    travel as hex (:func:`~tranche.core.multirow.insert_rows`: no escaping of the JSON);
    the others one executemany.
    """
    if not events:
        return []
    now = utc_now()
    ids = new_event_ids(len(events))
    # Keyed by id(): every mapping in ``events`` stays alive for this call, so an id
    # cannot be reused by another mapping before the cache is dropped.
    encoded: dict[int, str | None] = {}
    try:
        rows = [
            _row(e, event_id, now, "", encoded) for e, event_id in zip(events, ids, strict=True)
        ]
    except ValueError:
        # Validate again, naming the index of the first bad event.
        for i, e in enumerate(events):
            _row(e, ids[i], now, f"events[{i}].", {})
        raise
    dialect = session.get_bind().dialect.name
    if len(rows) >= _COPY_THRESHOLD and dialect == "postgresql":
        await _copy_rows(session, rows)
    elif dialect in ("mysql", "mariadb"):
        await insert_rows(session, outbox_table, COPY_COLUMNS, rows)
    else:
        await session.execute(
            insert(outbox_table), [dict(zip(COPY_COLUMNS, r, strict=True)) for r in rows]
        )
    wake.mark(session, rows)
    return ids


_ROW_START = struct.Struct(">hi").pack


def _copy_data(rows: list[tuple[Any, ...]]) -> bytes:
    """The rows as binary COPY data (:mod:`tranche.core.pgcopy`), the values events share
    (topic, headers, status, timestamps) encoded once: asyncpg's records encoded both
    timestamps of every row, half the CPU of a 1 000-event COPY."""
    shared = FieldCache()
    field, encode = shared.encoded.get, shared.encode
    parts = [HEADER]
    append = parts.append
    for event_id, topic, key, payload, headers, status, attempts, defect, at, due in rows:
        encoded_id = event_id.encode()
        append(_ROW_START(len(COPY_COLUMNS), len(encoded_id)))
        append(encoded_id)
        append(field(id(topic)) or encode(topic))
        if key is None:
            append(NULL)
        else:
            encoded_key = key.encode()
            append(length(len(encoded_key)))
            append(encoded_key)
        append(length(len(payload)))
        append(payload)
        append(field(id(headers)) or encode(headers))
        append(field(id(status)) or encode(status))
        append(field(id(attempts)) or encode(attempts))
        append(field(id(defect)) or encode(defect))
        append(field(id(at)) or encode(at))
        append(field(id(due)) or encode(due))
    append(TRAILER)
    return b"".join(parts)


async def _copy_rows(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    if not driver.is_in_transaction():
        # Let SQLAlchemy's asyncpg adapter open its transaction first, so the COPY sent
        # on the driver connection joins it instead of committing on its own.
        await session.execute(text("SELECT 1"))
    # A memoryview: asyncpg would take bytes for a file name (os.fspath accepts them).
    data = memoryview(_copy_data(rows))
    await driver.copy_to_table(
        outbox_table.name, source=data, columns=COPY_COLUMNS, format="binary"
    )
