"""Jobs and writers for the batch tests: items are written to a table in batchdb itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tranche.batch import (
    BatchSettings,
    ChunkStep,
    ItemWriter,
    Job,
    ListReader,
    StepContext,
    create_batch_tables,
)
from tranche.core.db import create_engine
from tranche.core.settings import PoolSettings

test_metadata = MetaData()
written = Table(
    "test_written",
    test_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(100), nullable=False),
    Column("value", Integer, nullable=False),
)


POOL = PoolSettings(pool_size=4, max_overflow=4, pool_timeout=30, pool_recycle=-1)
SETTINGS = BatchSettings(
    lock_heartbeat_seconds=1, lock_stale_after_seconds=60, shutdown_grace_seconds=5
)


async def batch_engine_for(url: str) -> AsyncEngine:
    engine = create_engine(url, POOL)
    await create_batch_tables(engine)
    async with engine.begin() as conn:
        await conn.run_sync(test_metadata.create_all)
    return engine


class Boom(Exception):
    """An injected failure."""


class Transient(Exception):
    """A failure that goes away when retried."""


class BadItem(Exception):
    """A failure tied to one item (skippable)."""


async def written_values(engine: AsyncEngine, job: str) -> list[int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(written.c.value).where(written.c.job == job).order_by(written.c.id)
        )
        return [r[0] for r in rows]


async def written_count(engine: AsyncEngine, job: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    select(func.count()).select_from(written).where(written.c.job == job)
                )
            ).scalar_one()
        )


def table_writer(job: str, *, fail_on: Callable[[int], bool] | None = None) -> ItemWriter[int]:
    """Writes each value as a row in the chunk's batchdb transaction."""

    async def write(items: Sequence[int], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": job, "value": v} for v in items])
        if fail_on is not None:
            for v in items:
                if fail_on(v):
                    raise BadItem(f"cannot write {v}")

    return write


@dataclass
class Injector:
    """Raises once at chosen items (the failure "goes away" after it fired)."""

    fail_at: set[int] = field(default_factory=set)
    error: type[Exception] = Boom
    fired: list[int] = field(default_factory=list)
    on_item: Callable[[int], Any] | None = None

    async def process(self, item: int) -> int:
        if self.on_item is not None:
            result = self.on_item(item)
            if asyncio.iscoroutine(result):
                await result
        if item in self.fail_at:
            self.fail_at.discard(item)
            self.fired.append(item)
            raise self.error(f"injected at {item}")
        return item


def counting_job(
    name: str, n: int, chunk: int, injector: Injector | None = None, **step: Any
) -> Job:
    return Job(
        name,
        [
            ChunkStep(
                "countStep",
                reader=ListReader(list(range(n))),
                processor=injector.process if injector else None,
                writer=table_writer(name),
                chunk_size=chunk,
                **step,
            )
        ],
    )
