"""Fixtures of the monthly report tests: fresh portals on SQLite and MariaDB, seeded or empty."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.doctoral.factories import server_urls, sqlite_urls
from tests.doctoral.harness import Databases, prepare
from tests.doctoral.report_data import seed_all
from tests.fixtures.servers import mariadb_databases
from tranche.doctoral.sources import Sources

FreshPortal = Callable[[], Awaitable[Databases]]


@pytest.fixture(params=["sqlite", "mariadb"], scope="module")
async def fresh_portal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FreshPortal]:
    """Makes fresh, migrated sets of the five databases on SQLite files or on local MariaDB."""
    if request.param == "sqlite":

        async def on_sqlite() -> Databases:
            return Databases("sqlite", await prepare(sqlite_urls(tmp_path_factory.mktemp("r"))))

        yield on_sqlite
        return
    async with mariadb_databases() as factory:

        async def on_mariadb() -> Databases:
            return Databases("mariadb", await prepare(await server_urls(factory)))

        yield on_mariadb


@pytest.fixture(scope="module")
async def seeded(fresh_portal: FreshPortal) -> Databases:
    """One portal holding :mod:`tests.doctoral.report_data`'s rows, shared by a module."""
    dbs = await fresh_portal()
    sources = Sources.open(dbs.urls, dbs.settings().pool())
    try:
        await seed_all(sources)
    finally:
        await sources.close()
    return dbs


def report_settings(dbs: Databases, tmp_path: Path, **overrides: Any) -> Any:
    return dbs.settings(
        reports_dir=tmp_path / "reports",
        report_institution_name="École doctorale Sciences et Techniques",
        **overrides,
    )
