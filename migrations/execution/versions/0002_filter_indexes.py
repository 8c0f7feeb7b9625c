"""Indexes the list filters can use: ``upper(col)`` instead of the plain columns.

Revision ID: 0002_filter_indexes
Revises: 0001_execution_schema
Create Date: 2026-12-03

``GET /api/v1/executions`` filters status, trade type and destination ignoring case
(``upper(col) IN (...)``); a plain index on the column cannot serve that, so PostgreSQL
scanned the whole table. Expression indexes on ``upper(col)`` replace the three plain
single-column ones (nothing else reads those: the number of indexes each insert pays
for stays the same). An adopted original database keeps ``idx_status_received_timestamp``,
which still serves the original's exact status filter should it be rolled back to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_filter_indexes"
down_revision: str | None = "0001_execution_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (plain index replaced, expression index, column)
REPLACED = [
    ("idx_execution_status", "idx_upper_execution_status", "execution_status"),
    ("idx_trade_type", "idx_upper_trade_type", "trade_type"),
    ("idx_destination", "idx_upper_destination", "destination"),
]


def _existing() -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(op.get_bind()).get_indexes("execution")}


def _expression_indexes() -> bool:
    """MariaDB has no index on an expression (only on a generated column): it keeps the
    plain indexes, and its case-insensitive default collation is what it filters by."""
    return op.get_bind().dialect.name not in ("mysql", "mariadb")


def upgrade() -> None:
    if not _expression_indexes():
        return
    existing = _existing()
    for plain, upper, column in REPLACED:
        if upper not in existing:
            op.create_index(upper, "execution", [sa.text(f"upper({column})")])
        if plain in existing:
            op.drop_index(plain, table_name="execution")


def downgrade() -> None:
    if not _expression_indexes():
        return
    existing = _existing()
    for plain, upper, column in reversed(REPLACED):
        if plain not in existing:
            op.create_index(plain, "execution", [column])
        if upper in existing:
            op.drop_index(upper, table_name="execution")
