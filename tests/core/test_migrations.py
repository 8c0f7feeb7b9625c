from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from tranche.core.db import Database
from tranche.core.migrations import migrations_root, upgrade
from tranche.core.settings import PoolSettings

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widget", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("widget")
"""


@pytest.fixture
def env_root(tmp_path: Path) -> Path:
    env = tmp_path / "sample"
    (env / "versions").mkdir(parents=True)
    (env / "env.py").write_text(
        "from alembic import context\nfrom tranche.core.migrations import run_env\nrun_env(context)\n"
    )
    (env / "versions" / "r1_widget.py").write_text(REVISION)
    return tmp_path


async def test_upgrade_creates_tables_and_its_own_version_table(
    any_database_url: str, env_root: Path
) -> None:
    await upgrade("sample", any_database_url, root=env_root)
    await upgrade("sample", any_database_url, root=env_root)  # idempotent
    db = Database.open(
        "m",
        any_database_url,
        PoolSettings(pool_size=1, max_overflow=0, pool_timeout=5, pool_recycle=60),
    )
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert {"widget", "alembic_version_sample"} <= tables
    finally:
        await db.close()


def test_every_service_has_an_environment() -> None:
    for env in ("execution", "trade", "doctoral"):
        assert (migrations_root() / env / "env.py").exists()


async def test_unknown_environment_is_a_clear_error(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="no migrations for 'nope'"):
        await upgrade("nope", sqlite_url)
