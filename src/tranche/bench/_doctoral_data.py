"""Scratch MariaDB databases and bulk data for ``tranche bench doctoral`` (not timed)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import asyncmy
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from tranche.core.db import Database
from tranche.core.migrations import upgrade
from tranche.core.settings import PoolSettings
from tranche.doctoral.durations import add_months
from tranche.doctoral.sources import FOREIGN
from tranche.doctoral.tables import create_foreign_schema
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import userdb as U

__all__ = [
    "enrollments",
    "prepare",
    "role_id",
    "scratch_databases",
    "server_version",
    "tokens",
    "users",
]

POOL = PoolSettings(pool_size=4, max_overflow=4, pool_timeout=30, pool_recycle=-1)
NAMES = ("batchdb", *FOREIGN)
_BATCH = 5000


@asynccontextmanager
async def scratch_databases(server: str, keep: bool) -> AsyncIterator[dict[str, str]]:
    """Five fresh databases on ``server`` (a MariaDB URL without database); dropped after."""
    url = make_url(server)
    admin = await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )
    suffix = uuid.uuid4().hex[:8]
    names = {n: f"bench_{n.replace('_', '')}_{suffix}" for n in NAMES}
    try:
        async with admin.cursor() as cur:
            for db in names.values():
                await cur.execute(
                    f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        yield {
            n: url.set(drivername="mysql+asyncmy", database=db).render_as_string(False)
            for n, db in names.items()
        }
    finally:
        if not keep:
            async with admin.cursor() as cur:
                for db in names.values():
                    await cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        admin.close()


async def _insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), _BATCH):
        async with db.transaction() as s:
            await s.execute(sa.insert(table), rows[start : start + _BATCH])


async def users(db: Database, first: int, count: int, role_id: int) -> None:
    now = datetime(2025, 1, 1)
    users = [
        {
            "id": i,
            "last_name": f"Nom{i}",
            "first_name": f"Prénom{i}",
            "email": f"user{i}@bench.univ-exemple.fr",
            "password": "$2a$10$" + "x" * 53,
            "phone_number": "0600000000",
            "adresse": "1 rue des Écoles",
            "ville": "Rabat",
            "pays": "Maroc",
            "enabled": True,
            "created_at": now,
            "account_status": "ACTIVE",
            "failed_login_attempts": 0,
            "profile_complete": True,
        }
        for i in range(first, first + count)
    ]
    await _insert(db, U.users, users)
    await _insert(db, U.user_roles, [{"user_id": u["id"], "role_id": role_id} for u in users])


async def tokens(db: Database, users: range, run_at: datetime, expired_share: float) -> int:
    """One refresh and one reset token per user; returns how many are expired."""
    cut = int(len(users) * expired_share)
    refresh, reset = [], []
    for n, uid in enumerate(users):
        when = run_at - timedelta(minutes=n + 1) if n < cut else run_at + timedelta(minutes=n)
        refresh.append(
            {"user_id": uid, "token": f"r-{uid}-{uuid.uuid4().hex}", "expiry_date": when}
        )
        reset.append(
            {
                "token": f"p-{uid}-{uuid.uuid4().hex}",
                "user_id": uid,
                "expiration_date": when,
                "used": False,
            }
        )
    await _insert(db, U.refresh_token, refresh)
    await _insert(db, U.password_reset_tokens, reset)
    return 2 * cut


async def enrollments(db: Database, doctorants: range, director: int, run_at: datetime) -> None:
    campaign = 1  # a fresh database: the only campaign
    async with db.transaction() as s:
        await s.execute(
            sa.insert(I.campagnes).values(
                id=campaign,
                libelle="Bench",
                type="INSCRIPTION",
                date_debut=run_at.date(),
                date_fin=run_at.date(),
                active=True,
                annee_universitaire=run_at.year,
            )
        )
    rows = []
    for n, doc in enumerate(doctorants):
        first = datetime.combine(add_months(run_at.date(), -(n % 81)), datetime.min.time())
        rows.append(
            {
                "doctorant_id": doc,
                "directeur_these_id": director,
                "campagne_id": campaign,
                "sujet_these": "Sujet",
                "type": "PREMIERE_INSCRIPTION",
                "annee_inscription": first.year,
                "statut": "VALIDE",
                "date_creation": first,
                "date_validation": first,
                "date_premiere_inscription": first,
                "derogation": None,
                "bloque_re_inscription": False,
            }
        )
    await _insert(db, I.inscriptions, rows)


async def prepare(urls: dict[str, str]) -> dict[str, Database]:
    dbs = {n: Database.open(n, urls[n], POOL) for n in FOREIGN}
    for name, db in dbs.items():
        await create_foreign_schema(db.engine, name)
    await upgrade("doctoral", urls["batchdb"])
    async with dbs["userdb"].transaction() as s:
        await s.execute(sa.insert(U.roles), [{"name": r} for r in U.ROLE_NAMES])
    return dbs


async def role_id(db: Database, name: str) -> int:
    async with db.sessions() as s:
        return int(
            (await s.execute(sa.select(U.roles.c.id).where(U.roles.c.name == name))).scalar_one()
        )


async def server_version(server: str) -> str:
    url = make_url(server)
    conn = await asyncmy.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("SELECT VERSION()")
            (version,) = await cur.fetchone()
        return f"MariaDB {str(version).split('-')[0]}"
    finally:
        conn.close()
