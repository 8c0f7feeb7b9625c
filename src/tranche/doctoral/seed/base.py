"""Shared state and helpers of the seeders: databases, clock, random source, Faker, report."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tranche.core.db import Database
from tranche.doctoral.models import utc_naive

__all__ = ["SeedBase", "SeedReport", "insert_rows", "next_id", "slug"]

_BATCH = 2000


@dataclass
class SeedReport:
    """What was inserted, with the counts a person checks the jobs against."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def slug(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in ascii_.lower() if c.isalnum()) or "x"


async def next_id(db: Database, table: sa.Table) -> int:
    async with db.sessions() as s:
        return int((await s.execute(sa.select(sa.func.max(table.c.id)))).scalar() or 0) + 1


async def insert_rows(db: Database, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        async with db.transaction() as s:
            await s.execute(sa.insert(table), list(rows[start : start + _BATCH]))


class SeedBase:
    """Fills the four foreign databases; ``now`` is the instant the data is relative to (UTC)."""

    def __init__(
        self,
        userdb: Database,
        inscription_db: Database,
        defensedb: Database,
        notification_db: Database,
        now: datetime,
        seed: int = 4,
    ) -> None:
        self.userdb, self.inscription_db = userdb, inscription_db
        self.defensedb, self.notification_db = defensedb, notification_db
        self.now = utc_naive(now)
        self.rng = random.Random(seed)
        # Imported here: Faker is a demo/seed dependency (the ``demo`` extra), not a runtime one.
        from faker import Faker

        self.fake = Faker("fr_FR")
        self.fake.seed_instance(seed)
        self.report = SeedReport()
