"""``insert_rows``: what goes in comes back, byte for byte, on MariaDB and on the fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.fixtures.servers import DatabaseFactory
from tranche.core import multirow
from tranche.core.db import Database
from tranche.core.multirow import insert_rows
from tranche.core.settings import PoolSettings
from tranche.core.sqltypes import UtcDateTime

POOL = PoolSettings(pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=60)

metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(100), nullable=True),
    sa.Column("payload", sa.LargeBinary().with_variant(sa.dialects.mysql.LONGBLOB(), "mysql")),
    sa.Column("at", UtcDateTime(), nullable=True),
    sa.Column("flag", sa.Boolean(), nullable=True),
)
COLUMNS = ("label", "payload", "at", "flag")

#: Everything a driver's escaping exists for: quotes, backslashes, NUL, ^Z, newlines, and
#: bytes that are not UTF-8 at all.
AWKWARD = b'it\'s "quoted" \\ back\\slash \x00 nul \x1a ctrl-z \n\r \xff\xfe not utf-8'


@pytest.fixture(params=["mariadb", "sqlite"])
async def db(
    request: pytest.FixtureRequest, mariadb_factory: DatabaseFactory, sqlite_url: str
) -> AsyncIterator[Database]:
    url = await mariadb_factory("multirow") if request.param == "mariadb" else sqlite_url
    database = Database.open("multirow", url, POOL)
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield database
    finally:
        await database.close()


async def _stored(db: Database) -> list[tuple[object, ...]]:
    async with db.sessions() as s:
        query = sa.select(things.c.label, things.c.payload, things.c.at, things.c.flag)
        return [tuple(r) for r in (await s.execute(query.order_by(things.c.id))).all()]


async def test_rows_come_back_exactly_as_written(db: Database) -> None:
    at = datetime(2026, 12, 4, 12, 30, 15, 123456, tzinfo=UTC)
    rows = [
        ("l'étiquette \\ « ok »", AWKWARD, at, True),
        (None, None, None, None),
        ("plain", b"", at.astimezone(), False),  # an aware local time is stored as UTC
        ("naive is UTC", b"{}", at.replace(tzinfo=None), True),
    ]
    async with db.transaction() as s:
        await insert_rows(s, things, COLUMNS, rows)

    assert await _stored(db) == [
        ("l'étiquette \\ « ok »", AWKWARD, at, True),
        (None, None, None, None),
        ("plain", b"", at, False),
        ("naive is UTC", b"{}", at, True),
    ]


async def test_many_rows_split_into_several_statements_all_arrive(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multirow, "_MAX_ROWS", 7)
    monkeypatch.setattr(multirow, "_MAX_STATEMENT_BYTES", 200)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(f"row {i}", bytes([i % 256]) * (i % 50), start + timedelta(seconds=i), i % 2 == 0)
            for i in range(100)]  # fmt: skip
    async with db.transaction() as s:
        await insert_rows(s, things, COLUMNS, rows)

    assert await _stored(db) == rows


async def test_rows_roll_back_with_the_transaction(db: Database) -> None:
    async with db.sessions() as s:
        await insert_rows(s, things, COLUMNS, [("gone", b"x", None, None)])
        await s.rollback()
    async with db.transaction() as s:
        await insert_rows(s, things, COLUMNS, [])  # nothing to write: no statement, no error
    assert await _stored(db) == []


async def test_a_shared_timestamp_is_converted_once_and_right_for_every_row(
    db: Database,
) -> None:
    now = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
    other = now.astimezone()  # the same instant, another object and zone
    later = now + timedelta(minutes=1)
    rows = [("a", None, now, True), ("b", None, now, False), ("c", None, None, True),
            ("d", None, other, True), ("e", None, now, True), ("f", None, later, None)]  # fmt: skip
    async with db.transaction() as s:
        await insert_rows(s, things, COLUMNS, rows)
    stored = [(label, at) for label, _p, at, _f in await _stored(db)]
    assert stored == [("a", now), ("b", now), ("c", None), ("d", now), ("e", now), ("f", later)]


@pytest.mark.parametrize("db", ["mariadb"], indirect=True)
async def test_schema_names_the_database_of_the_table(
    db: Database, mariadb_factory: DatabaseFactory
) -> None:
    """A session on one database writes a table of another on the same server."""
    other = Database.open("multirow-other", await mariadb_factory("multirow"), POOL)
    try:
        async with other.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        async with db.transaction() as s:
            await insert_rows(s, things, COLUMNS, [("there", b"x", None, None)],
                              schema=other.engine.url.database)  # fmt: skip
        assert await _stored(db) == []
        assert await _stored(other) == [("there", b"x", None, None)]
    finally:
        await other.close()
