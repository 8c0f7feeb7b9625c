"""Batch engine fixtures: batchdb engines with the batch tables (and a test table) created."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, batch_engine_for
from tranche.batch import JobLauncher, JobRepository


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
