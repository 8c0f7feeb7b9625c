"""doctoral: per-recipient delivery status of the monthly report

Revision ID: 0003_report_deliveries
Revises: 0002_doctoral
Create Date: 2025-01-01 00:00:02
"""

from collections.abc import Sequence

from alembic import op

from tranche.doctoral.reports.deliveries import add_report_deliveries, drop_report_deliveries

revision: str = "0003_report_deliveries"
down_revision: str | None = "0002_doctoral"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_report_deliveries(op)


def downgrade() -> None:
    drop_report_deliveries(op)
