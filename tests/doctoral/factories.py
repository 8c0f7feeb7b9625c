"""Builders for the doctoral tests: foreign databases from the fixture schemas, rows, tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.fixtures.waiting import eventually
from tranche.core.db import Database
from tranche.core.jwt import issue_token
from tranche.core.settings import PoolSettings
from tranche.doctoral.sources import FOREIGN
from tranche.doctoral.tables import create_foreign_schema
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import userdb as U

POOL = PoolSettings(pool_size=3, max_overflow=2, pool_timeout=10, pool_recycle=300)
SECRET = "test-secret-shared-with-user-service-0123456789"
Factory = Callable[[str], Awaitable[str]]
_ids = count(1)


def sqlite_urls(directory: Path) -> dict[str, str]:
    return {n: f"sqlite+aiosqlite:///{directory / f'{n}.db'}" for n in ("batchdb", *FOREIGN)}


async def server_urls(factory: Factory) -> dict[str, str]:
    """One fresh database per name on the server ``factory`` creates them on."""
    return {n: await factory(n.replace("_", "")) for n in ("batchdb", *FOREIGN)}


async def create_foreign(urls: dict[str, str]) -> None:
    for name in FOREIGN:
        db = Database.open(name, urls[name], POOL)
        try:
            await create_foreign_schema(db.engine, name)
        finally:
            await db.close()


@asynccontextmanager
async def opened(url: str, name: str = "db") -> AsyncIterator[Database]:
    db = Database.open(name, url, POOL)
    try:
        yield db
    finally:
        await db.close()


def admin_token(roles: tuple[str, ...] = ("ROLE_ADMIN",), **kw: Any) -> str:
    return issue_token(
        SECRET.encode(),
        kw.pop("subject", "admin@univ.fr"),
        roles,
        kw.pop("issuer", "user-service"),
        **kw,
    )


@dataclass
class Portal:
    """Rows written into the foreign databases by a test, by their natural handles."""

    userdb: Database
    inscription_db: Database

    async def user(self, role: str = "ROLE_DOCTORANT", email: str | None = None) -> int:
        n = next(_ids)
        async with self.userdb.transaction() as s:
            role_id = (
                await s.execute(sa.select(U.roles.c.id).where(U.roles.c.name == role))
            ).scalar()
            if role_id is None:
                role_id = (
                    await s.execute(sa.insert(U.roles).values(name=role))
                ).inserted_primary_key[0]  # type: ignore[index]
            result = await s.execute(
                sa.insert(U.users).values(
                    last_name=f"Nom{n}",
                    first_name=f"Prénom{n}",
                    email=email or f"user{n}@univ-exemple.fr",
                    password="$2a$10$" + "x" * 53,
                    phone_number="0600000000",
                    adresse="1 rue de la Paix",
                    ville="Rabat",
                    pays="Maroc",
                    enabled=True,
                    created_at=datetime(2020, 1, 1),
                    account_status="ACTIVE",
                    failed_login_attempts=0,
                    profile_complete=True,
                )
            )
            uid = int(result.inserted_primary_key[0])  # type: ignore[index]
            await s.execute(sa.insert(U.user_roles).values(user_id=uid, role_id=role_id))
        return uid

    async def campaign(self) -> int:
        async with self.inscription_db.transaction() as s:
            r = await s.execute(
                sa.insert(I.campagnes).values(
                    libelle="Campagne test",
                    type="INSCRIPTION",
                    date_debut=date(2019, 9, 1),
                    date_fin=date(2019, 10, 31),
                    active=True,
                    annee_universitaire=2019,
                )
            )
            return int(r.inserted_primary_key[0])  # type: ignore[index]

    async def enrollment(
        self,
        doctorant: int,
        director: int,
        first: datetime | None,
        *,
        statut: str = "VALIDE",
        derogation: bool | None = None,
        kind: str = "PREMIERE_INSCRIPTION",
        campaign: int | None = None,
    ) -> int:
        campaign = campaign or await self.campaign()
        created = first or datetime(2024, 1, 1)
        async with self.inscription_db.transaction() as s:
            r = await s.execute(
                sa.insert(I.inscriptions).values(
                    doctorant_id=doctorant,
                    directeur_these_id=director,
                    campagne_id=campaign,
                    sujet_these="Sujet de thèse",
                    type=kind,
                    annee_inscription=created.year,
                    statut=statut,
                    date_creation=created,
                    date_validation=created + timedelta(days=10) if statut == "VALIDE" else None,
                    date_premiere_inscription=first,
                    derogation=derogation,
                    bloque_re_inscription=False,
                )
            )
            return int(r.inserted_primary_key[0])  # type: ignore[index]


_CONSUMER_FIELDS = {"type", "destinataire", "sujet", "messageTexte", "priorite", "donnees"}


def assert_consumer_accepts(value: dict[str, Any]) -> None:
    """What notification-service checks before it stores and mails an event (reference §7)."""
    from tranche.doctoral.notifications import EMAIL_PATTERN
    from tranche.doctoral.tables.notification_db import PRIORITES, TYPES

    assert set(value) == _CONSUMER_FIELDS, sorted(value)
    assert value["type"] in TYPES
    assert EMAIL_PATTERN.match(value["destinataire"])
    assert isinstance(value["sujet"], str) and value["sujet"].strip()
    assert value["priorite"] in PRIORITES
    assert isinstance(value["donnees"], dict)


def months_before(run: date, months: float) -> datetime:
    """A first-enrollment instant ``months`` (e.g. 32.9) whole-or-not months before ``run``."""
    from tranche.doctoral.durations import add_months

    whole = int(months)
    day = add_months(run, -whole)
    if months != whole:
        day = add_months(run, -(whole + 1)) + timedelta(days=3)
    return datetime.combine(day, datetime.min.time()) + timedelta(hours=10)


async def wait_published(db: Database, topic: str, count: int, timeout_s: float = 20.0) -> None:
    """Until ``count`` outbox rows of ``topic`` are SENT (the broker acknowledged them)."""
    from tranche.core.outbox import outbox_table

    async def enough() -> bool:
        async with db.sessions() as s:
            sent = (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(outbox_table)
                    .where(outbox_table.c.topic == topic, outbox_table.c.status == "SENT")
                )
            ).scalar_one()
        return bool(sent >= count)

    await eventually(enough, timeout_s, f"{count} events on {topic} to be published")
