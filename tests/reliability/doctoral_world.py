"""The doctoral reliability tests' world: MariaDB databases, seeded portal data, a killer.

Shared by the fault, replica and least-privilege tests (tests never import a conftest).
The killer plays the MariaDB server restarting under a running job without restarting
the server the other suites share: from an admin connection it ``KILL CONNECTION``s
every connection of the test's own databases (nobody else's), round after round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncmy
import sqlalchemy as sa

from tests.doctoral.factories import server_urls
from tests.doctoral.harness import Databases, prepare
from tests.fixtures.servers import (
    MARIADB_HOST,
    MARIADB_PASSWORD,
    MARIADB_PORT,
    MARIADB_USER,
    mariadb_databases,
)
from tranche.core.outbox import outbox_table
from tranche.doctoral.models import alerte_duree_envoyee
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.seed import Seeder
from tranche.doctoral.tables import userdb as U

__all__ = [
    "RUN",
    "Killer",
    "alert_events",
    "database_names",
    "mariadb_admin",
    "mariadb_world",
    "seed_alerts",
    "seed_tokens",
]

#: The instant the seeded data is relative to and the jobs run at.
RUN = datetime(2025, 3, 17, 2, 0, tzinfo=UTC)


@asynccontextmanager
async def mariadb_world() -> AsyncIterator[Databases]:
    """The five doctoral databases on the local MariaDB, migrated; dropped after."""
    async with mariadb_databases() as factory:
        yield Databases("mariadb", await prepare(await server_urls(factory)))


@asynccontextmanager
async def mariadb_admin() -> AsyncIterator[Any]:
    conn = await asyncmy.connect(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password=MARIADB_PASSWORD,
        connect_timeout=5,
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()


def database_names(databases: Databases) -> list[str]:
    return [urlsplit(url).path.lstrip("/") for url in databases.urls.values()]


def seeder(runtime: Runtime) -> Seeder:
    src = runtime.sources
    return Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, RUN)


async def seed_tokens(runtime: Runtime, users: int) -> tuple[int, int]:
    """Every user gets a refresh token and maybe a reset token; (expired, valid) totals."""
    ids = await seeder(runtime).users(users, "ROLE_DOCTORANT")
    await seeder(runtime).tokens(ids, expired_share=0.7, reset_share=0.5)
    return await token_counts(runtime)


async def token_counts(runtime: Runtime) -> tuple[int, int]:
    cutoff = RUN.replace(tzinfo=None)
    expired = valid = 0
    async with runtime.sources.userdb.sessions() as s:
        for table, column in (
            (U.refresh_token, U.refresh_token.c.expiry_date),
            (U.password_reset_tokens, U.password_reset_tokens.c.expiration_date),
        ):
            count = sa.select(sa.func.count()).select_from(table)
            expired += int((await s.execute(count.where(column < cutoff))).scalar_one())
            valid += int((await s.execute(count.where(column >= cutoff))).scalar_one())
    return expired, valid


async def seed_alerts(runtime: Runtime, doctorants: int) -> None:
    s = seeder(runtime)
    directors = await s.users(max(1, doctorants // 10), "ROLE_DIRECTEUR")
    await s.enrollments(await s.users(doctorants, "ROLE_DOCTORANT"), directors)


async def alert_events(runtime: Runtime) -> tuple[list[tuple[Any, ...]], int]:
    """Duration-alert events in the outbox as (inscription, role, type), and ledger rows."""
    async with runtime.sources.batchdb.sessions() as s:
        payloads = (await s.execute(sa.select(outbox_table.c.payload))).scalars().all()
        ledger = int(
            (
                await s.execute(sa.select(sa.func.count()).select_from(alerte_duree_envoyee))
            ).scalar_one()
        )
    found = []
    for payload in payloads:
        donnees = json.loads(payload).get("donnees", {})
        if "alerteType" in donnees:
            found.append(
                (donnees["inscriptionId"], donnees["destinataireRole"], donnees["alerteType"])
            )
    return found, ledger


@dataclass
class Killer:
    """Kills every busy connection to ``names`` (in a transaction or a query) from ``admin``,
    one round per :meth:`round`."""

    admin: Any
    names: list[str]
    killed: int = 0
    rounds: int = 0
    in_transaction: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    async def round(self) -> int:
        marks = ", ".join(["%s"] * len(self.names))
        async with self.admin.cursor() as cur:
            await cur.execute(
                "SELECT p.ID, t.trx_id IS NOT NULL FROM information_schema.PROCESSLIST p "
                "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID "
                f"WHERE p.DB IN ({marks}) AND p.ID <> CONNECTION_ID() "
                # Busy ones only: an idle pooled connection is replaced on checkout
                # (pre-ping) without the job noticing; the restart's damage is mid-work.
                "AND (t.trx_id IS NOT NULL OR p.COMMAND <> 'Sleep')",
                self.names,
            )
            victims = list(await cur.fetchall())
            for thread, in_trx in victims:
                # Gone already (it ended between the SELECT and the KILL): nothing to do.
                with contextlib.suppress(Exception):
                    await cur.execute(f"KILL CONNECTION {int(thread)}")
                    self.killed += 1
                    self.in_transaction += int(bool(in_trx))
        self.rounds += 1
        return len(victims)

    def start(self, every_s: float, rounds: int) -> None:
        """Kill in the background: ``rounds`` rounds that found a victim, ``every_s`` apart
        (a fault's rhythm, not a wait for something)."""

        async def loop() -> None:
            hits = 0
            while hits < rounds:
                if await self.round():
                    hits += 1
                await asyncio.sleep(every_s)

        self._task = asyncio.create_task(loop(), name="mariadb-killer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task  # a killer that failed raises here, failing the test

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()
