"""``execution.submission_key``: the Idempotency-Key to resend under.

Revision ID: 0002_submission_key
Revises: 0001_trade_schema
Create Date: 2026-12-03

Set when the execution service answered a send but the answer could not be
recorded (an id the ``integer`` column cannot hold, an id given to two
executions, the database failing mid-record); the next submission of the
execution reuses the key, so the execution service replays its first answer
instead of creating the execution a second time. Cleared once the outcome is
recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_submission_key"
down_revision: str | None = "0001_trade_schema"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("execution") as batch:
        batch.add_column(sa.Column("submission_key", sa.String(64), nullable=True))
    op.create_index("execution_submission_key_ndx", "execution", ["submission_key"])


def downgrade() -> None:
    op.drop_index("execution_submission_key_ndx", table_name="execution")
    with op.batch_alter_table("execution") as batch:
        batch.drop_column("submission_key")
