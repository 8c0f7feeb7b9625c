"""Trade service schema and seeded lookups (the original's Flyway V1-V7).

Revision ID: 0001_trade_schema
Revises:
Create Date: 2025-01-01

Tables, column types, foreign-key actions and seed rows as the original; the
lookups are inserted in the original order so their ids (1...n) match it.
Of V6/V7's twenty speculative indexes only those our queries use are kept.
Two execution columns are new: ``average_price`` (the original dropped the fill
price) and ``submission_claimed_at`` (set while a submission of the execution is
on its way to the execution service, so a concurrent one is refused).

Pointed at a database the original created (its Flyway history and tables are
there), the migration adopts it in place: it adds only the columns and indexes
tranche needs and never touches a row, so the original's ids, versions, seeded
lookups and blank-padded ``char(24)`` ids stay as they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tranche.core.sqltypes import UtcDateTime

revision: str = "0001_trade_schema"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DECIMAL = sa.Numeric(18, 8)
SEEDS = {
    "blotter": (
        ("abbreviation", "name"),
        [("Default", "Default"), ("EQ", "Equity"), ("FI", "Fixed Income"), ("HOLD", "Hold")],
    ),
    "trade_type": (
        ("abbreviation", "description"),
        [
            ("BUY", "Buy"),
            ("SELL", "Sell"),
            ("SHORT", "Sell to Open"),
            ("COVER", "Buy to Close"),
            ("EXRC", "Exercise"),
        ],
    ),
    "destination": (
        ("abbreviation", "description"),
        [
            ("ML", "Merrill Lynch"),
            ("RBC", "Royal Bank of Canada"),
            ("JPM", "Chase"),
            ("IB", "Interactive Brokers"),
            ("INST", "Instinet"),
            ("POSIT", "Posit"),
        ],
    ),
    "execution_status": (
        ("abbreviation", "description"),
        [
            ("NEW", "New"),
            ("SENT", "Sent"),
            ("WORK", "In progress"),
            ("FULL", "Filled"),
            ("PART", "Partial fill"),
            ("HOLD", "Hold"),
            ("CNCL", "Cancel"),
            ("CNCLD", "Cancelled"),
            ("CPART", "Cancelled with partial fill"),
            ("DEL", "Delete"),
        ],
    ),
}


def _lookup(name: str, abbreviation_len: int, text_col: str, text_len: int) -> sa.Table:
    return op.create_table(
        name,
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("abbreviation", sa.String(abbreviation_len), nullable=False),
        sa.Column(text_col, sa.String(text_len), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("id", name=f"{name}_pk"),
    )


ORIGINAL_TABLES = (
    "blotter",
    "trade_type",
    "execution_status",
    "destination",
    "trade_order",
    "execution",
)
INDEXES: list[tuple[str, str, list[str]]] = [
    ("execution_service_id_ndx", "execution", ["execution_service_id"]),
    ("execution_trade_order_ndx", "execution", ["trade_order_id"]),
    ("execution_status_timestamp_ndx", "execution", ["execution_status_id", "execution_timestamp"]),
    ("trade_order_blotter_ndx", "trade_order", ["blotter_id"]),
]


def _added_columns() -> list[tuple[str, sa.Column[object]]]:
    """Columns tranche added to (or the original added late to) an original table."""
    return [
        ("trade_order", sa.Column("submitted", sa.Boolean, server_default=sa.false())),
        ("execution", sa.Column("average_price", DECIMAL)),
        ("execution", sa.Column("submission_claimed_at", UtcDateTime())),
    ]


def _adopt(inspector: sa.Inspector) -> None:
    """Bring the original's tables up to ours without touching a row."""
    for table, column in _added_columns():
        present = {c["name"] for c in inspector.get_columns(table)}
        if column.name not in present:
            with op.batch_alter_table(table) as batch:
                batch.add_column(column)
    for name, table, columns in INDEXES:
        if name not in {str(ix["name"]) for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, columns)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names()) & set(ORIGINAL_TABLES)
    if present == set(ORIGINAL_TABLES):
        _adopt(inspector)
        return
    if present:
        raise RuntimeError(
            "the database holds some of the trade service's tables but not all "
            f"(found {sorted(present)}); refusing to guess how to adopt it"
        )
    tables = {
        "blotter": _lookup("blotter", 20, "name", 100),
        "trade_type": _lookup("trade_type", 10, "description", 60),
        "execution_status": _lookup("execution_status", 20, "description", 60),
        "destination": _lookup("destination", 20, "description", 60),
    }
    op.create_table(
        "trade_order",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column("order_id", sa.Integer, nullable=False),
        sa.Column("portfolio_id", sa.CHAR(24), nullable=False),
        sa.Column("order_type", sa.CHAR(10), nullable=False),
        sa.Column("security_id", sa.CHAR(24), nullable=False),
        sa.Column("quantity", DECIMAL, nullable=False),
        sa.Column("quantity_sent", DECIMAL, nullable=False, server_default="0"),
        sa.Column("limit_price", DECIMAL),
        sa.Column(
            "trade_timestamp",
            UtcDateTime(),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("blotter_id", sa.Integer),
        sa.Column("submitted", sa.Boolean, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="trade_pk"),
        sa.ForeignKeyConstraint(
            ["blotter_id"],
            ["blotter.id"],
            name="blotter__fk",
            match="FULL",
            ondelete="SET NULL",
            onupdate="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("trade_order_order_id_ndx", "trade_order", ["order_id"], unique=True)
    op.create_table(
        "execution",
        sa.Column("id", sa.Integer, autoincrement=True),
        sa.Column(
            "execution_timestamp",
            UtcDateTime(),
            nullable=False,
            server_default=sa.func.current_timestamp(),
        ),
        sa.Column("execution_status_id", sa.Integer, nullable=False),
        sa.Column("blotter_id", sa.Integer),
        sa.Column("trade_type_id", sa.Integer),
        sa.Column("trade_order_id", sa.Integer, nullable=False),
        sa.Column("destination_id", sa.Integer, nullable=False),
        sa.Column("quantity_ordered", DECIMAL, nullable=False),
        sa.Column("quantity_placed", DECIMAL, nullable=False),
        sa.Column("quantity_filled", DECIMAL, nullable=False, server_default="0"),
        sa.Column("limit_price", DECIMAL),
        sa.Column("average_price", DECIMAL),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("execution_service_id", sa.Integer),
        sa.Column("submission_claimed_at", UtcDateTime()),
        sa.PrimaryKeyConstraint("id", name="execution_pk"),
        sa.ForeignKeyConstraint(
            ["execution_status_id"],
            ["execution_status.id"],
            name="execution_status__fk",
            match="FULL",
            ondelete="RESTRICT",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trade_type_id"],
            ["trade_type.id"],
            name="trade_type__fk",
            match="FULL",
            ondelete="SET NULL",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trade_order_id"],
            ["trade_order.id"],
            name="trade_order__fk",
            match="FULL",
            ondelete="RESTRICT",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["destination.id"],
            name="destination__fk",
            match="FULL",
            ondelete="RESTRICT",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blotter_id"],
            ["blotter.id"],
            name="execution_blotter__fk",
            match="FULL",
            ondelete="SET NULL",
            onupdate="CASCADE",
        ),
        sqlite_autoincrement=True,
    )
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    for name, (columns, rows) in SEEDS.items():
        op.bulk_insert(tables[name], [dict(zip(columns, row, strict=True)) for row in rows])


def downgrade() -> None:
    for index, table in (
        ("trade_order_blotter_ndx", "trade_order"),
        ("execution_status_timestamp_ndx", "execution"),
        ("execution_trade_order_ndx", "execution"),
        ("execution_service_id_ndx", "execution"),
        ("trade_order_order_id_ndx", "trade_order"),
    ):
        op.drop_index(index, table_name=table)
    for table in ("execution", "trade_order", "destination", "execution_status", "trade_type"):
        op.drop_table(table)
    op.drop_table("blotter")
