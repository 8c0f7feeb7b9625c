"""Runs the Alembic environment of an owned database (``migrations/<env>/``).

Each owned database has its own environment and its own version table
(``alembic_version_<env>``), so two services may share one PostgreSQL database
without stepping on each other's history. Alembic's commands are synchronous
and its async env calls ``asyncio.run``, so :func:`upgrade` runs them in a
worker thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from tranche.core.db import normalize_url

__all__ = ["alembic_config", "migrations_root", "run_env", "upgrade", "upgrade_sync"]


def migrations_root() -> Path:
    """``migrations/`` of a source checkout, or the copy packaged into the wheel."""
    here = Path(__file__).resolve()
    packaged = here.parents[1] / "_migrations"
    if packaged.is_dir():
        return packaged
    return here.parents[3] / "migrations"


def alembic_config(env: str, url: str, root: Path | None = None) -> Config:
    location = (root or migrations_root()) / env
    if not (location / "env.py").exists():
        raise ValueError(f"no migrations for '{env}' (looked in {location})")
    cfg = Config()
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("version_locations", str(location / "versions"))
    cfg.attributes["url"] = normalize_url(url).render_as_string(hide_password=False)
    cfg.attributes["env_name"] = env
    return cfg


def upgrade_sync(env: str, url: str, revision: str = "head", root: Path | None = None) -> None:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        # A fresh data directory: SQLite creates the file but not its folder.
        Path(str(parsed.database)).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(env, url, root), revision)


async def upgrade(env: str, url: str, revision: str = "head", root: Path | None = None) -> None:
    """Bring database ``url`` to ``revision`` of environment ``env``."""
    await asyncio.to_thread(upgrade_sync, env, url, revision, root)


def run_env(context: Any, target_metadata: MetaData | None = None) -> None:
    """Body of every ``env.py``: online migrations over the async engine."""
    cfg = context.config
    url = cfg.attributes.get("url") or cfg.get_main_option("sqlalchemy.url")
    version_table = f"alembic_version_{cfg.attributes.get('env_name', 'tranche')}"

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table,
            render_as_batch=connection.dialect.name == "sqlite",
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = async_engine_from_config({"url": url}, prefix="", poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())
