"""Builders for outbox tests: databases with the table, fast settings, relays, consumers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from alembic.migration import MigrationContext
from alembic.operations import Operations
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from tranche.core.db import Database
from tranche.core.outbox import (
    OutboxSettings,
    Relay,
    add_outbox_table,
    drop_outbox_table,
    outbox_table,
    utc_now,
)
from tranche.core.settings import KafkaSettings, PoolSettings

POOL = PoolSettings(pool_size=4, max_overflow=4, pool_timeout=30, pool_recycle=-1)

#: Quick retries and a short circuit reset so failure paths finish within a test.
FAST = {
    "poll_interval_ms": 50,
    "initial_backoff_ms": 50,
    "max_backoff_ms": 200,
    "breaker_reset_ms": 300,
}


def settings(**overrides: Any) -> OutboxSettings:
    return OutboxSettings(**{**FAST, **overrides})


def kafka(bootstrap: str, **overrides: Any) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        request_timeout_ms=overrides.pop("request_timeout_ms", 5000),
        **overrides,
    )


async def create_table(db: Database) -> None:
    """Create the outbox the way a service migration does: through Alembic operations."""

    def run(conn: Any) -> None:
        add_outbox_table(Operations(MigrationContext.configure(conn)))

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def drop_table(db: Database) -> None:
    def run(conn: Any) -> None:
        drop_outbox_table(Operations(MigrationContext.configure(conn)))

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


@asynccontextmanager
async def outbox_database(
    url: str, name: str = "test", create: bool = True
) -> AsyncIterator[Database]:
    db = Database.open(name, url, POOL)
    try:
        if create:
            await create_table(db)
        yield db
    finally:
        await db.close()


async def clear(db: Database) -> None:
    async with db.transaction() as s:
        await s.execute(outbox_table.delete())


@asynccontextmanager
async def running_relay(
    db: Database,
    bootstrap: str,
    registry: CollectorRegistry | None = None,
    kafka_overrides: dict[str, Any] | None = None,
    clock: Callable[[], datetime] = utc_now,
    **overrides: Any,
) -> AsyncIterator[Relay]:
    relay = Relay(
        db,
        kafka(bootstrap, **(kafka_overrides or {})),
        settings(**overrides),
        registry or CollectorRegistry(),
        clock=clock,
    )
    await relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def rows_by_status(db: Database, topic: str | None = None) -> dict[str, int]:
    t = outbox_table
    stmt = select(t.c.status)
    if topic is not None:
        stmt = stmt.where(t.c.topic == topic)
    async with db.sessions() as s:
        out: dict[str, int] = {}
        for status in (await s.execute(stmt)).scalars():
            out[status] = out.get(status, 0) + 1
        return out


def header(record: ConsumerRecord[bytes, bytes], name: str) -> bytes | None:
    for k, v in record.headers:
        if k == name:
            return v
    return None


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
