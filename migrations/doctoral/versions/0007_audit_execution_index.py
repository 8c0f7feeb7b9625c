"""doctoral: index audit_log by execution

Revision ID: 0007_audit_execution_index
Revises: 0006_consistency
Create Date: 2026-12-03 00:00:07

A run's end and its failure mail are audited once per execution: the retried
append (after a COMMIT whose answer was lost) looks its row up by
``execution_id`` before adding one, and the console filters the log by
execution. An index keeps both from scanning years of audit rows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007_audit_execution_index"
down_revision: str | None = "0006_consistency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_log_execution", "audit_log", ["execution_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_execution", table_name="audit_log")
