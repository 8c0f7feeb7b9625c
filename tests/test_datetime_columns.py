"""Every datetime column we create is ``datetime(6)`` on MariaDB, and the one type round-trips.

MariaDB's plain ``DATETIME`` silently drops microseconds, so two events of the same second
would sort arbitrarily and a lease stored at ``12:00:00.9`` would read back as expired early.
The schema test reads ``information_schema.COLUMNS`` after the real migrations (and, for the
tables tests and embedded mode build from metadata, after ``create_all``). The trade
schema is PostgreSQL-only (its foreign keys use ``MATCH``), so it is not migrated here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from tests.fixtures.servers import DatabaseFactory
from tranche.batch.tables import metadata as batch_metadata
from tranche.core.db import Database
from tranche.core.idempotency import idempotency_table
from tranche.core.migrations import upgrade
from tranche.core.outbox.table import outbox_metadata
from tranche.core.settings import PoolSettings
from tranche.core.sqltypes import UtcDateTime
from tranche.doctoral.models import metadata as doctoral_metadata

POOL = PoolSettings(pool_size=1, max_overflow=0, pool_timeout=10, pool_recycle=60)

DATETIME_COLUMNS = sa.text(
    "SELECT table_name, column_name, column_type FROM information_schema.COLUMNS "
    "WHERE table_schema = DATABASE() AND data_type IN ('datetime', 'timestamp')"
)


async def _datetime_columns(url: str) -> dict[str, str]:
    db = Database.open("schema", url, POOL)
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(DATETIME_COLUMNS)).all()
    finally:
        await db.close()
    return {f"{table}.{column}".lower(): str(kind).lower() for table, column, kind in rows}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # batchdb: the batch engine's tables, the outbox and the doctoral service's own tables.
        (
            "doctoral",
            {
                "batch_job_execution.create_time",
                "batch_step_execution.start_time",
                "batch_job_lock.renewed_at",
                "batch_fire_lock.fire_time",
                "outbox.available_at",
                "alerte_duree_envoyee.date_envoi",
                "job_execution_history.start_time",
                "audit_log.timestamp",
            },
        ),
        (
            "execution",
            {
                "execution.received_timestamp",
                "trade_fill_callback.locked_until",
                "idempotency_key.expires_at",
                "outbox.sent_at",
            },
        ),
    ],
)
async def test_migrated_datetime_columns_keep_microseconds_on_mariadb(
    mariadb_factory: DatabaseFactory, env: str, expected: set[str]
) -> None:
    url = await mariadb_factory(env)
    await upgrade(env, url)

    columns = await _datetime_columns(url)

    assert expected <= set(columns), f"missing datetime columns: {expected - set(columns)}"
    assert {name: kind for name, kind in columns.items() if kind != "datetime(6)"} == {}


async def test_metadata_datetime_columns_keep_microseconds_on_mariadb(
    mariadb_factory: DatabaseFactory,
) -> None:
    url = await mariadb_factory("meta")
    idempotency = sa.MetaData()
    idempotency_table(idempotency)
    db = Database.open("meta", url, POOL)
    try:
        async with db.engine.begin() as conn:
            for metadata in (batch_metadata, outbox_metadata, idempotency, doctoral_metadata):
                await conn.run_sync(metadata.create_all)
    finally:
        await db.close()

    columns = await _datetime_columns(url)

    assert {
        "batch_job_execution.end_time",
        "outbox.created_at",
        "idempotency_key.locked_until",
    } <= set(columns)
    assert {name: kind for name, kind in columns.items() if kind != "datetime(6)"} == {}


_stamps = sa.Table(
    "stamps",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime(), nullable=False),
)


async def test_utc_datetime_round_trips_aware_utc_with_microseconds(
    any_database_url: str,
) -> None:
    paris = timezone(timedelta(hours=2))
    written = {
        1: datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        2: datetime(2026, 3, 1, 14, 0, 0, 654321, tzinfo=paris),  # converted to 12:00 UTC
        3: datetime(2026, 3, 1, 12, 0, 0, 5),  # naive: taken to be UTC
    }
    db = Database.open("stamps", any_database_url, POOL)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_stamps.metadata.create_all)
            await conn.execute(_stamps.insert(), [{"id": k, "at": v} for k, v in written.items()])
        async with db.engine.connect() as conn:
            read = dict((await conn.execute(sa.select(_stamps.c.id, _stamps.c.at))).all())
    finally:
        await db.close()

    assert read == {
        1: datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
        2: datetime(2026, 3, 1, 12, 0, 0, 654321, tzinfo=UTC),
        3: datetime(2026, 3, 1, 12, 0, 0, 5, tzinfo=UTC),
    }
    assert all(value.utcoffset() == timedelta(0) for value in read.values())
