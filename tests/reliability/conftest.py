"""Reliability fixtures: execution and trade apps on SQLite and PostgreSQL, doctoral databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.doctoral.factories import sqlite_urls
from tests.doctoral.harness import Databases, prepare
from tests.execution.harness import Harness, running
from tests.fixtures.servers import postgres_databases
from tests.trade.factories import ScriptedExecutionService, trade_app
from tranche.core.migrations import upgrade


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def execution(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, broker: Any
) -> AsyncIterator[Harness]:
    """The execution service once on SQLite, once on PostgreSQL."""
    path = tmp_path_factory.mktemp(f"reliability-execution-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{path / 'execution.db'}"
        async with running(url, broker.bootstrap_servers, path) as harness:
            yield harness
        return
    async with postgres_databases() as factory:
        url = await factory("rexec")
        async with running(url, broker.bootstrap_servers, path) as harness:
            yield harness


async def _unreachable(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("hostile-input tests never reach the execution service")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def trade(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The trade service once on SQLite, once on PostgreSQL; submissions are never sent."""
    transport = ScriptedExecutionService(_unreachable).transport()
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("reliability-trade")
        url = f"sqlite+aiosqlite:///{path / 'trade.db'}"
        await upgrade("trade", url)
        async with trade_app(url, transport) as client:
            yield client
        return
    async with postgres_databases() as factory:
        url = await factory("rtrade")
        await upgrade("trade", url)
        async with trade_app(url, transport) as client:
            yield client


@pytest.fixture
async def sqlite_databases(tmp_path: Path) -> Databases:
    """The doctoral service's five databases as fresh SQLite files."""
    return Databases("sqlite", await prepare(sqlite_urls(tmp_path)))
