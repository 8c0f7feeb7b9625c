"""Synthetic but realistic portal data (Faker ``fr_FR``) for the demo, tests and benchmarks.

Rows follow the owners' rules (reference §2-5): enrollments go
BROUILLON → EN_ATTENTE_DIRECTEUR → EN_ATTENTE_ADMIN → VALIDE|REJETE, a
validated first enrollment sets ``date_premiere_inscription`` and each yearly
re-enrollment copies it; a refused derogation blocks re-enrollment. First
enrollment dates are spread so that every alert window (3 years, 6 years,
exceeded, with and without derogation) and both token states (expired,
valid) have rows. Ids are assigned here (continuing after any existing rows),
so one ``executemany`` per table is enough even for benchmark volumes.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tranche.core.db import Database
from tranche.core.settings import PoolSettings
from tranche.doctoral.seed.activity import ActivitySeeding
from tranche.doctoral.seed.archives import ArchiveSeeding
from tranche.doctoral.seed.base import SeedReport
from tranche.doctoral.seed.inconsistencies import ConsistencySeeding
from tranche.doctoral.seed.people import PeopleSeeding
from tranche.doctoral.seed.theses import ThesisSeeding
from tranche.doctoral.sources import FOREIGN
from tranche.doctoral.tables import create_foreign_schema

__all__ = ["SeedReport", "Seeder", "seed_portal"]


class Seeder(ConsistencySeeding, PeopleSeeding, ThesisSeeding, ActivitySeeding, ArchiveSeeding):
    """All the seeders; :meth:`demo` is what ``tranche doctoral seed-demo`` writes."""

    async def demo(self, scale: int = 1, files: tuple[Path, Path] | None = None) -> SeedReport:
        """A portal of ``50 * scale`` doctorants with their directors, admins and history.

        With ``files`` (uploads directory, procès-verbal directory) the documents the rows
        reference are written there too, with records old enough for archiveJob; a few
        of each inconsistency dataConsistencyJob looks for are planted either way.
        """
        admins = await self.users(2, "ROLE_ADMIN")
        directors = await self.users(max(3, 5 * scale), "ROLE_DIRECTEUR")
        doctorants = await self.users(50 * scale, "ROLE_DOCTORANT")
        await self.tokens(admins + directors + doctorants)
        enrolled = await self.enrollments(doctorants, directors)
        await self.defenses(enrolled, directors)
        await self.consistency(doctorants, directors, files[0] if files else None)
        await self.notifications(doctorants + directors, 4 * len(doctorants))
        if files is not None:
            await self.documents(*files)
        return self.report


async def seed_portal(
    urls: dict[str, str],
    pool: PoolSettings,
    scale: int,
    now: datetime,
    seed: int = 4,
    files: tuple[Path, Path] | None = None,
) -> SeedReport:
    """Create the owners' tables where missing and fill them (``tranche doctoral seed-demo``)."""
    dbs = {name: Database.open(name, urls[name], pool) for name in FOREIGN}
    try:
        for name, db in dbs.items():
            await create_foreign_schema(db.engine, name)
        u, i, d, n = (dbs[name] for name in FOREIGN)
        seeder = Seeder(u, i, d, n, now, seed)
        return await seeder.demo(scale, files)
    finally:
        for db in dbs.values():
            await db.close()
