"""batchdb's own tables (besides the batch engine's and the outbox), as the migrations create them.

Times are naive UTC (``datetime(6)`` on MariaDB) on every engine, so values
compare the same everywhere; :func:`utc_naive` converts at the boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = [
    "alerte_duree_envoyee",
    "audit_log",
    "job_execution_history",
    "metadata",
    "utc_naive",
]

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()


def utc_naive(value: datetime) -> datetime:
    """``value`` in UTC without tzinfo (naive values are taken to be UTC already)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


alerte_duree_envoyee = sa.Table(
    "alerte_duree_envoyee",
    metadata,
    sa.Column("id", Pk, primary_key=True, autoincrement=True),
    sa.Column("inscription_id", sa.BigInteger, nullable=False),
    sa.Column("doctorant_id", sa.BigInteger, nullable=False),
    sa.Column("type_alerte", sa.String(50), nullable=False),
    sa.Column("date_envoi", Ts, nullable=False),
    sa.Column("mois_ecoules", sa.Integer, nullable=False),
    sa.Column("job_execution_id", sa.BigInteger),
    sa.UniqueConstraint("inscription_id", "type_alerte", name="uk_alerte_inscription_type"),
    sa.Index("ix_alerte_doctorant_type", "doctorant_id", "type_alerte"),
)

job_execution_history = sa.Table(
    "job_execution_history",
    metadata,
    sa.Column("id", Pk, primary_key=True, autoincrement=True),
    sa.Column("job_execution_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("job_name", sa.String(100), nullable=False),
    sa.Column("start_time", Ts, nullable=False),
    sa.Column("end_time", Ts),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("exit_code", sa.String(100)),
    sa.Column("exit_message", sa.Text),
    sa.Column("items_processed", sa.Integer, nullable=False),
    sa.Column("items_failed", sa.Integer, nullable=False),
    sa.Column("counts", sa.JSON),
    sa.Column("triggered_by", sa.String(255)),
    sa.Column("created_at", Ts, nullable=False),
    sa.Index("ix_history_job_start", "job_name", "start_time"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", Pk, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("timestamp", Ts, nullable=False),
    sa.Column("event_type", sa.String(30), nullable=False),
    sa.Column("event_action", sa.String(50), nullable=False),
    sa.Column("job_name", sa.String(100)),
    sa.Column("execution_id", sa.BigInteger),
    sa.Column("user_id", sa.String(255)),
    sa.Column("user_role", sa.String(255)),
    sa.Column("resource_path", sa.String(500)),
    sa.Column("details", sa.Text),
    sa.Column("status", sa.String(20)),
    sa.Column("ip_address", sa.String(64)),
    sa.Column("user_agent", sa.String(500)),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_execution", "execution_id"),
)
