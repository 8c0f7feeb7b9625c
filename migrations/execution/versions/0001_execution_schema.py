"""Execution service schema: the original's ``execution`` table, fill callbacks, outbox,
idempotency keys.

Revision ID: 0001_execution_schema
Revises:
Create Date: 2025-01-01

``execution`` as Flyway V1-V3 of the original left it (V4's extra indexes are left
out: every index is paid for on each bulk insert and our queries do not use them).
Pointed at the original's database (its Flyway V1-V4 applied, ``flyway_schema_history``
beside it), the migration adopts the existing table in place: it checks the table is the
original's (every V1 column there), adds V2's columns if that script never ran and the
V3 indexes tranche's queries use, and creates tranche's own tables (fill callbacks,
outbox, idempotency keys). No row, sequence, V4 index or Flyway history row is touched:
ids, versions and blank-padded ``char(24)`` security ids stay as the original wrote them
and the ``id`` serial continues.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tranche.core.idempotency import add_idempotency_table, drop_idempotency_table
from tranche.core.outbox import add_outbox_table, drop_outbox_table
from tranche.core.sqltypes import UtcDateTime

revision: str = "0001_execution_schema"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIMAL = sa.Numeric(18, 8)
TIMESTAMP = UtcDateTime()

#: Flyway V1's columns: a table called ``execution`` without them is not the original's.
ORIGINAL_COLUMNS = frozenset(
    {
        "id",
        "execution_status",
        "trade_type",
        "destination",
        "security_id",
        "quantity",
        "limit_price",
        "received_timestamp",
        "sent_timestamp",
        "version",
        "trade_service_execution_id",
    }
)

INDEXES: list[tuple[str, list[str], str | None]] = [
    ("idx_execution_status", ["execution_status"], None),
    ("idx_trade_type", ["trade_type"], None),
    ("idx_destination", ["destination"], None),
    ("idx_security_id", ["security_id"], None),
    ("idx_received_timestamp_id", ["received_timestamp", "id"], None),
    ("idx_status_received_timestamp", ["execution_status", "received_timestamp"], None),
    ("idx_sent_timestamp", ["sent_timestamp"], None),
    ("idx_trade_service_execution_id", ["trade_service_execution_id"], None),
    (
        "idx_unfilled_executions",
        ["execution_status", "quantity_filled"],
        "quantity_filled < quantity",
    ),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "execution" not in tables:
        op.create_table(
            "execution",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("execution_status", sa.String(20), nullable=False),
            sa.Column("trade_type", sa.String(10), nullable=False),
            sa.Column("destination", sa.String(20), nullable=False),
            sa.Column("security_id", sa.CHAR(24), nullable=False),
            sa.Column("quantity", DECIMAL, nullable=False),
            sa.Column("limit_price", DECIMAL, nullable=True),
            sa.Column("received_timestamp", TIMESTAMP, nullable=False),
            sa.Column("sent_timestamp", TIMESTAMP, nullable=True),
            sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
            sa.Column("trade_service_execution_id", sa.Integer(), nullable=True),
            sa.Column("quantity_filled", DECIMAL, nullable=False, server_default="0"),
            sa.Column("average_price", DECIMAL, nullable=True),
            sa.PrimaryKeyConstraint("id", name="execution_pk"),
            sqlite_autoincrement=True,
        )
    else:
        columns = {c["name"] for c in inspector.get_columns("execution")}
        missing = sorted(ORIGINAL_COLUMNS - columns)
        if missing:
            raise RuntimeError(
                "the database has an execution table that is not the execution service's "
                f"(columns {missing} are missing); refusing to guess how to adopt it"
            )
        with op.batch_alter_table("execution") as batch:
            if "quantity_filled" not in columns:
                batch.add_column(sa.Column("quantity_filled", DECIMAL, server_default="0"))
            if "average_price" not in columns:
                batch.add_column(sa.Column("average_price", DECIMAL, nullable=True))
    existing: set[str] = set()
    if "execution" in tables:
        existing = {str(ix["name"]) for ix in inspector.get_indexes("execution")}
    for name, cols, where in INDEXES:
        if name in existing:
            continue
        kw: dict[str, object] = {}
        if where is not None:
            kw = {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}
        op.create_index(name, "execution", cols, **kw)

    op.create_table(
        "trade_fill_callback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("execution_id", sa.Integer(), nullable=False),
        sa.Column("trade_service_execution_id", sa.Integer(), nullable=False),
        sa.Column("execution_status", sa.String(20), nullable=False),
        sa.Column("quantity_filled", DECIMAL, nullable=False),
        sa.Column("average_price", DECIMAL, nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("locked_until", TIMESTAMP, nullable=True),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("delivered_at", TIMESTAMP, nullable=True),
    )
    op.create_index(
        "ix_trade_fill_callback_due", "trade_fill_callback", ["status", "next_attempt_at"]
    )
    op.create_index("ix_trade_fill_callback_execution", "trade_fill_callback", ["execution_id"])
    add_outbox_table(op)
    add_idempotency_table(op)


def downgrade() -> None:
    drop_idempotency_table(op)
    drop_outbox_table(op)
    op.drop_index("ix_trade_fill_callback_execution", table_name="trade_fill_callback")
    op.drop_index("ix_trade_fill_callback_due", table_name="trade_fill_callback")
    op.drop_table("trade_fill_callback")
    for name, _cols, _where in reversed(INDEXES):
        op.drop_index(name, table_name="execution")
    op.drop_table("execution")
