"""Batch engine fixtures: batchdb engines with the batch tables (and a test table) created."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import test_metadata
from tranche.batch import BatchSettings, JobLauncher, JobRepository, create_batch_tables
from tranche.core.db import create_engine
from tranche.core.settings import PoolSettings

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


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh SQLite batchdb."""
    eng = await batch_engine_for(sqlite_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def any_engine(any_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A fresh batchdb on each of SQLite, PostgreSQL and MariaDB."""
    eng = await batch_engine_for(any_database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def launcher(engine: AsyncEngine) -> AsyncIterator[JobLauncher]:
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    yield launcher
    await launcher.close()
