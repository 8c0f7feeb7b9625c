"""seed-demo's data is accepted by the owners' schemas and gives every job work to do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.doctoral.factories import create_foreign, opened, server_urls, sqlite_urls
from tranche.doctoral.durations import OwnerThresholds
from tranche.doctoral.seed import Seeder
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import userdb as U

NOW = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)


async def _seed_and_check(urls: dict[str, str]) -> None:
    await create_foreign(urls)
    async with (
        opened(urls["userdb"]) as u,
        opened(urls["inscription_db"]) as i,
        opened(urls["defensedb"]) as d,
        opened(urls["notification_db"]) as n,
    ):
        report = await Seeder(u, i, d, n, NOW).demo(scale=1)
        counts = report.counts
        assert counts["users ROLE_DOCTORANT"] == 50
        assert counts["refresh_token expired"] > 0 and counts["refresh_token valid"] > 0
        assert counts["password_reset_tokens expired"] > 0
        async with u.sessions() as s:
            expired = (
                await s.execute(
                    sa.select(sa.func.count()).where(
                        U.refresh_token.c.expiry_date < NOW.replace(tzinfo=None)
                    )
                )
            ).scalar()
        assert expired == counts["refresh_token expired"]
        async with i.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(
                        I.inscriptions.c.doctorant_id,
                        I.inscriptions.c.date_premiere_inscription,
                        I.inscriptions.c.derogation,
                    ).where(I.inscriptions.c.statut == "VALIDE")
                )
            ).all()
        derogated = {r.doctorant_id for r in rows if r.derogation}
        alerts = {
            OwnerThresholds().classify(
                r.date_premiere_inscription.date(), NOW.date(), r.doctorant_id in derogated
            )
            for r in rows
        }
        assert {"APPROCHE_3_ANS", "APPROCHE_6_ANS", "DEPASSE_6_ANS"} <= {
            str(a) for a in alerts if a
        }
        assert derogated, "some doctorants in the 3-year window hold a derogation"

        # A second run adds to the data instead of colliding with it.
        again = await Seeder(u, i, d, n, NOW, seed=5).demo(scale=1)
        assert again.counts["users ROLE_DOCTORANT"] == 50


async def test_seed_on_sqlite(tmp_path: Path) -> None:
    await _seed_and_check(sqlite_urls(tmp_path))


@pytest.mark.mariadb
async def test_seed_on_mariadb(mariadb_factory: Callable[[str], Awaitable[str]]) -> None:
    await _seed_and_check(await server_urls(mariadb_factory))
