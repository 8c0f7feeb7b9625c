"""Writing events: validation names the field and writes nothing; one statement per call."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from tranche.core.db import Database
from tranche.core.outbox import OutboxEvent, enqueue, enqueue_many, outbox_table
from tranche.core.outbox.enqueue import decode_headers, encode_headers, serialise_value


async def _count(db: Database) -> int:
    async with db.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(outbox_table))).scalar_one())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"topic": "has space"}, "topic: 'has space' is not a valid Kafka topic name"),
        ({"topic": "t" * 246}, "at most 245 characters"),
        ({"topic": ".."}, "topic: '..' is not a valid Kafka topic name"),
        ({"key": "k" * 513}, "key: must be None or a string of at most 512 characters"),
        ({"headers": {"event-id": "mine"}}, "headers: 'event-id' is set by the outbox"),
        ({"headers": {"n": 5}}, "headers['n']: must be str or bytes (got int)"),
        ({"headers": {"": "v"}}, "headers: header names must be 1-255 characters"),
    ],
)
async def test_bad_arguments_name_the_field_and_write_nothing(
    pg_db: Database, kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {"topic": "orders", "key": "1", "value": {"a": 1}} | kwargs
    async with pg_db.transaction() as s:
        with pytest.raises(ValueError, match=re.escape(message)):
            await enqueue(s, **args)
    assert await _count(pg_db) == 0


async def test_enqueue_many_names_the_index_of_the_bad_event(pg_db: Database) -> None:
    events = [OutboxEvent("orders", "1", {}), OutboxEvent("bad topic", "2", {})]
    async with pg_db.transaction() as s:
        with pytest.raises(ValueError, match=r"events\[1\]\.topic"):
            await enqueue_many(s, events)
    assert await _count(pg_db) == 0


@pytest.mark.parametrize("size", [10, 500])
async def test_enqueue_many_is_one_statement_and_keeps_input_order(
    any_db: Database, size: int
) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    events = [OutboxEvent("orders", str(i), {"i": i}) for i in range(size)]
    async with any_db.sessions() as s:
        await s.connection()  # the transaction's own BEGIN is not ours to count
        event.listen(any_db.engine.sync_engine, "before_cursor_execute", count)
        try:
            ids = await enqueue_many(s, events)
        finally:
            event.remove(any_db.engine.sync_engine, "before_cursor_execute", count)
        await s.commit()
    # PostgreSQL's COPY for 500 events bypasses the cursor: at most the statement that
    # opens the transaction shows up.
    assert len(statements) <= 1
    assert len(set(ids)) == size
    async with any_db.sessions() as s:
        stored = (
            await s.execute(
                select(outbox_table.c.event_id, outbox_table.c.key).order_by(outbox_table.c.seq)
            )
        ).all()
    assert [(r.event_id, r.key) for r in stored] == [(i, str(n)) for n, i in enumerate(ids)]


async def test_a_rolled_back_copy_leaves_no_rows(pg_db: Database) -> None:
    async with pg_db.sessions() as s:
        await enqueue_many(s, [OutboxEvent("orders", str(i), {"i": i}) for i in range(200)])
        await s.rollback()
    assert await _count(pg_db) == 0


def test_values_serialise_exactly() -> None:
    assert serialise_value({"p": Decimal("0.10000000")}) == (b'{"p":0.10000000}', None)
    assert serialise_value(["a", 1]) == (b'["a",1]', None)
    assert serialise_value("é") == ("é".encode(), None)
    payload, defect = serialise_value({"p": Decimal("NaN")})
    assert defect is not None and defect.startswith("unserialisable value")
    assert payload == b"{'p': Decimal('NaN')}"


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=20).filter(lambda n: n.lower() != "event-id"),
        st.one_of(st.binary(max_size=50), st.text(max_size=50)),
        max_size=8,
    )
)
def test_headers_round_trip_byte_for_byte(headers: dict[str, str | bytes]) -> None:
    decoded = dict(decode_headers(encode_headers(headers)))
    assert decoded == {k: v.encode() if isinstance(v, str) else v for k, v in headers.items()}
