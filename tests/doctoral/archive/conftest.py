"""archiveJob's fixtures: fresh SQLite and MariaDB databases per test, and a scene on them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.doctoral.archive.data import Scene, scene
from tests.doctoral.factories import server_urls, sqlite_urls
from tests.doctoral.harness import Databases, prepare
from tests.fixtures.servers import mariadb_databases


@pytest.fixture(params=["sqlite", "mariadb"])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    """Fresh databases per test: each test counts exactly what it archived."""
    if request.param == "sqlite":
        yield Databases("sqlite", await prepare(sqlite_urls(tmp_path / "db")))
        return
    async with mariadb_databases() as factory:
        yield Databases("mariadb", await prepare(await server_urls(factory)))


@pytest.fixture
async def world(fresh: Databases, tmp_path: Path) -> AsyncIterator[Scene]:
    async with scene(fresh, tmp_path) as s:
        yield s
