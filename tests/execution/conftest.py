"""Execution fixtures: the app on SQLite and PostgreSQL (helpers in ``tests.execution.harness``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.execution.harness import Harness, running
from tests.fixtures.servers import postgres_databases


@pytest.fixture(scope="module")
async def sqlite_app(
    tmp_path_factory: pytest.TempPathFactory, broker: Any
) -> AsyncIterator[Harness]:
    """One app on one SQLite file for the whole module (tests find their rows by id)."""
    path = tmp_path_factory.mktemp("execution")
    url = f"sqlite+aiosqlite:///{path / 'execution.db'}"
    async with running(url, broker.bootstrap_servers, path) as harness:
        yield harness


@pytest.fixture(scope="module")
async def postgres_app(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory, broker: Any
) -> AsyncIterator[Harness]:
    """One app on one PostgreSQL database for the whole module."""
    path = tmp_path_factory.mktemp("execution-pg")
    async with running(postgres_url, broker.bootstrap_servers, path) as harness:
        yield harness


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def any_app(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    broker: Any,
) -> AsyncIterator[Harness]:
    """The module's tests once on SQLite, once on PostgreSQL."""
    path = tmp_path_factory.mktemp(f"execution-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{path / 'execution.db'}"
        async with running(url, broker.bootstrap_servers, path) as harness:
            yield harness
        return
    async with postgres_databases() as factory:
        url = await factory("exec")
        async with running(url, broker.bootstrap_servers, path) as harness:
            yield harness
