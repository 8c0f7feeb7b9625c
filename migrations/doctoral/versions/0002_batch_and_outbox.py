"""doctoral: the batch engine's tables and the transactional outbox

Revision ID: 0002_doctoral
Revises: 0001_doctoral
Create Date: 2025-01-01 00:00:01

Created by the helpers of the packages that own their shape, at this version
of it; a later change comes as a new helper in a new migration.
"""

from collections.abc import Sequence

from alembic import op

from tranche.batch import add_batch_tables, drop_batch_tables
from tranche.core.outbox import add_outbox_table, drop_outbox_table

revision: str = "0002_doctoral"
down_revision: str | None = "0001_doctoral"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_batch_tables(op)
    add_outbox_table(op)


def downgrade() -> None:
    drop_outbox_table(op)
    drop_batch_tables(op)
