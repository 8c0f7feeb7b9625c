"""Trade databases (one migrated PostgreSQL database per test module, SQLite per test) and
the trade app on the module's PostgreSQL database for tests that never reach the
execution service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.servers import DatabaseFactory
from tests.trade.factories import ScriptedExecutionService, trade_app
from tranche.core.migrations import upgrade


@pytest.fixture(scope="module")
async def trade_pg_url(postgres_factory: DatabaseFactory) -> str:
    """A PostgreSQL trade database at head, shared by the module (tests make their own rows)."""
    url = await postgres_factory("trade")
    await upgrade("trade", url)
    return url


@pytest.fixture
async def trade_sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'trade.db'}"
    await upgrade("trade", url)
    return url


async def _unreachable(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("these tests never reach the execution service")


@pytest.fixture(scope="module")
async def api(trade_pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The trade app on the module's PostgreSQL database; submissions must not be sent."""
    async with trade_app(
        trade_pg_url, ScriptedExecutionService(_unreachable).transport()
    ) as client:
        yield client
