"""Doctoral fixtures: the five databases on SQLite, MariaDB and PostgreSQL, migrated and ready."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from tests.doctoral.factories import Portal, server_urls, sqlite_urls
from tests.doctoral.harness import Databases, Running, prepare
from tests.fixtures.servers import mariadb_databases, postgres_databases
from tranche.core.outbox import Relay
from tranche.doctoral.runtime import Runtime


@pytest.fixture(params=["sqlite", "mariadb", "postgres"], scope="module")
async def databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Databases]:
    """Each test module runs on SQLite files, the local MariaDB server (production's engine)
    and the local PostgreSQL server."""
    if request.param == "sqlite":
        yield Databases("sqlite", await prepare(sqlite_urls(tmp_path_factory.mktemp("doctoral"))))
        return
    servers = mariadb_databases() if request.param == "mariadb" else postgres_databases()
    async with servers as factory:
        yield Databases(request.param, await prepare(await server_urls(factory)))


@pytest.fixture
async def sqlite_databases(tmp_path: Path) -> Databases:
    """Fresh SQLite databases for one test (for behaviour that does not depend on the engine)."""
    return Databases("sqlite", await prepare(sqlite_urls(tmp_path)))


@pytest.fixture
async def make_runtime(
    databases: Databases,
) -> AsyncIterator[Any]:
    """Builds a :class:`Runtime` (and optionally its relay) on ``databases``; closes them after."""
    made: list[Running] = []

    async def make(relay: bool = False, listeners: Any = (), **overrides: Any) -> Running:
        settings = databases.settings(**overrides)
        registry = CollectorRegistry()
        runtime = Runtime.build(settings, registry, listeners=listeners)
        r = None
        if relay:
            r = Relay(
                runtime.sources.batchdb,
                settings.kafka,
                settings.outbox,
                registry,
                name="doctoral-test",
            )
            await r.start()
        running = Running(
            runtime, Portal(runtime.sources.userdb, runtime.sources.inscription_db), r, registry
        )
        made.append(running)
        return running

    yield make
    for running in made:
        if running.relay is not None:
            await running.relay.stop()
        await running.runtime.close()
