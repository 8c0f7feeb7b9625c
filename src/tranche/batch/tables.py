"""The batchdb schema: Spring Batch's meta-data tables (lower-case) plus the two lock tables.

One definition feeds both :data:`metadata` (tests and embedded use call ``create_all``) and
the Alembic helpers :func:`add_batch_tables` / :func:`drop_batch_tables` that a service's
migration calls. The helpers create *this* version of the schema; a later change to it
will come as a new helper for a new migration, never as an edit that rewrites history.

``batch_job_lock`` holds one row per running job (its primary key is the job name), which is
how "one running execution per job" is enforced across processes; ``batch_fire_lock`` holds
one row per scheduled occurrence, so that of several replicas exactly one fires it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.schema import SchemaItem

from tranche.core.sqltypes import UtcDateTime

__all__ = [
    "TABLE_NAMES",
    "UtcDateTime",
    "add_batch_tables",
    "create_batch_tables",
    "drop_batch_tables",
    "fire_lock",
    "job_execution",
    "job_execution_context",
    "job_execution_params",
    "job_instance",
    "job_lock",
    "metadata",
    "step_execution",
    "step_execution_context",
]

_ID = BigInteger().with_variant(Integer(), "sqlite")
_LONG_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql")


def _counts() -> list[Column[Any]]:
    names = (
        "commit_count",
        "read_count",
        "filter_count",
        "write_count",
        "read_skip_count",
        "write_skip_count",
        "process_skip_count",
        "rollback_count",
    )
    return [Column(n, BigInteger, nullable=False, server_default="0") for n in names]


def _context(owner: str, table: str) -> list[SchemaItem]:
    return [
        Column(owner, _ID, primary_key=True, autoincrement=False),
        Column("short_context", String(2500), nullable=False),
        Column("serialized_context", _LONG_TEXT),
        ForeignKeyConstraint([owner], [f"{table}.{owner}"], name=f"{table}_ctx_fk"),
    ]


#: name → factory of fresh column/constraint objects (Alembic and Table each need their own).
_DEFINITIONS: list[tuple[str, Callable[[], list[SchemaItem]]]] = [
    (
        "batch_job_instance",
        lambda: [
            Column("job_instance_id", _ID, primary_key=True, autoincrement=True),
            Column("version", BigInteger),
            Column("job_name", String(100), nullable=False),
            Column("job_key", String(64), nullable=False),
            UniqueConstraint("job_name", "job_key", name="batch_job_inst_un"),
        ],
    ),
    (
        "batch_job_execution",
        lambda: [
            Column("job_execution_id", _ID, primary_key=True, autoincrement=True),
            Column("version", BigInteger),
            Column("job_instance_id", _ID, nullable=False, index=True),
            Column("create_time", UtcDateTime(), nullable=False),
            Column("start_time", UtcDateTime()),
            Column("end_time", UtcDateTime()),
            Column("status", String(10), index=True),
            Column("exit_code", String(2500)),
            Column("exit_message", String(2500)),
            Column("last_updated", UtcDateTime()),
            ForeignKeyConstraint(
                ["job_instance_id"],
                ["batch_job_instance.job_instance_id"],
                name="batch_job_inst_exec_fk",
            ),
        ],
    ),
    (
        "batch_job_execution_params",
        lambda: [
            Column("job_execution_id", _ID, nullable=False),
            Column("parameter_name", String(100), nullable=False),
            Column("parameter_type", String(100), nullable=False),
            Column("parameter_value", String(2500)),
            Column("identifying", String(1), nullable=False),
            PrimaryKeyConstraint("job_execution_id", "parameter_name"),
            ForeignKeyConstraint(
                ["job_execution_id"],
                ["batch_job_execution.job_execution_id"],
                name="batch_job_exec_params_fk",
            ),
        ],
    ),
    (
        "batch_step_execution",
        lambda: [
            Column("step_execution_id", _ID, primary_key=True, autoincrement=True),
            Column("version", BigInteger, nullable=False),
            Column("step_name", String(100), nullable=False),
            Column("job_execution_id", _ID, nullable=False, index=True),
            Column("create_time", UtcDateTime(), nullable=False),
            Column("start_time", UtcDateTime()),
            Column("end_time", UtcDateTime()),
            Column("status", String(10)),
            *_counts(),
            Column("exit_code", String(2500)),
            Column("exit_message", String(2500)),
            Column("last_updated", UtcDateTime()),
            ForeignKeyConstraint(
                ["job_execution_id"],
                ["batch_job_execution.job_execution_id"],
                name="batch_job_exec_step_fk",
            ),
        ],
    ),
    (
        "batch_job_execution_context",
        lambda: _context("job_execution_id", "batch_job_execution"),
    ),
    (
        "batch_step_execution_context",
        lambda: _context("step_execution_id", "batch_step_execution"),
    ),
    (
        "batch_job_lock",
        lambda: [
            Column("job_name", String(100), primary_key=True),
            Column("job_execution_id", _ID),
            Column("owner", String(200), nullable=False),
            Column("claimed_at", UtcDateTime(), nullable=False),
            Column("renewed_at", UtcDateTime(), nullable=False),
        ],
    ),
    (
        "batch_fire_lock",
        lambda: [
            Column("job_name", String(100), nullable=False),
            Column("fire_time", UtcDateTime(), nullable=False),
            Column("owner", String(200), nullable=False),
            Column("claimed_at", UtcDateTime(), nullable=False),
            Column("job_execution_id", _ID),
            PrimaryKeyConstraint("job_name", "fire_time"),
        ],
    ),
]

TABLE_NAMES: tuple[str, ...] = tuple(name for name, _ in _DEFINITIONS)

metadata = MetaData()
job_instance, job_execution, job_execution_params, step_execution = (
    Table(name, metadata, *factory()) for name, factory in _DEFINITIONS[:4]
)
job_execution_context, step_execution_context, job_lock, fire_lock = (
    Table(name, metadata, *factory()) for name, factory in _DEFINITIONS[4:]
)


def add_batch_tables(op: Any) -> None:
    """Create the batch tables from an Alembic migration's ``upgrade()`` (pass ``op``)."""
    for name, factory in _DEFINITIONS:
        op.create_table(name, *factory())


def drop_batch_tables(op: Any) -> None:
    """Drop the batch tables from an Alembic migration's ``downgrade()``."""
    for name, _ in reversed(_DEFINITIONS):
        op.drop_table(name)


async def create_batch_tables(engine: AsyncEngine) -> None:
    """Create the tables directly (tests, throw-away databases); migrations use the helpers."""
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
