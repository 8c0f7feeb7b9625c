"""Outbox fixtures: one PostgreSQL database with the outbox table per module, emptied per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from tests.core.outbox.factories import clear, outbox_database
from tranche.core.db import Database


@pytest.fixture(scope="module")
async def pg_module_db(postgres_url: str) -> AsyncIterator[Database]:
    async with outbox_database(postgres_url, "pg") as db:
        yield db


@pytest.fixture
async def pg_db(pg_module_db: Database) -> Database:
    await clear(pg_module_db)
    return pg_module_db


@pytest.fixture
async def any_db(any_database_url: str) -> AsyncIterator[Database]:
    async with outbox_database(any_database_url, "any") as db:
        yield db


@pytest.fixture(autouse=True)
def captured_logs() -> Iterator[list[dict[str, Any]]]:
    """Log events as dicts: failure paths log tracebacks, and rendering them is slow."""
    with structlog.testing.capture_logs() as logs:
        yield logs
