"""doctoral: alert ledger, job execution history, append-only audit log

Revision ID: 0001_doctoral
Revises:
Create Date: 2025-01-01 00:00:00

The audit log refuses UPDATE and DELETE with triggers on every engine
(PostgreSQL also refuses TRUNCATE); each row carries the hash of the previous
row, so a row removed or altered behind the triggers' back breaks the chain.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001_doctoral"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

APPEND_ONLY = "audit_log is append-only"


def upgrade() -> None:
    op.create_table(
        "alerte_duree_envoyee",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("inscription_id", sa.BigInteger, nullable=False),
        sa.Column("doctorant_id", sa.BigInteger, nullable=False),
        sa.Column("type_alerte", sa.String(50), nullable=False),
        sa.Column("date_envoi", Ts, nullable=False),
        sa.Column("mois_ecoules", sa.Integer, nullable=False),
        sa.Column("job_execution_id", sa.BigInteger),
        sa.UniqueConstraint("inscription_id", "type_alerte", name="uk_alerte_inscription_type"),
    )
    op.create_index(
        "ix_alerte_doctorant_type", "alerte_duree_envoyee", ["doctorant_id", "type_alerte"]
    )

    op.create_table(
        "job_execution_history",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("job_execution_id", sa.BigInteger, nullable=False),
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
        sa.UniqueConstraint("job_execution_id", name="uq_job_execution_history_job_execution_id"),
    )
    op.create_index("ix_history_job_start", "job_execution_history", ["job_name", "start_time"])

    op.create_table(
        "audit_log",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
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
        sa.UniqueConstraint("seq", name="uq_audit_log_seq"),
    )
    _append_only_triggers(op.get_bind().dialect.name)


def _append_only_triggers(dialect: str) -> None:
    if dialect in ("mysql", "mariadb"):
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{when.lower()} BEFORE {when} ON audit_log "
                f"FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '{APPEND_ONLY}'"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    elif dialect == "sqlite":
        for when in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{when.lower()} BEFORE {when} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
    else:
        raise RuntimeError(f"no append-only triggers for dialect {dialect!r}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    op.drop_table("audit_log")
    op.drop_index("ix_history_job_start", table_name="job_execution_history")
    op.drop_table("job_execution_history")
    op.drop_index("ix_alerte_doctorant_type", table_name="alerte_duree_envoyee")
    op.drop_table("alerte_duree_envoyee")
