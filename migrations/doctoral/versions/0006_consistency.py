"""doctoral: dataConsistencyJob's ledger of anomalies already reported

Revision ID: 0006_consistency
Revises: 0002_doctoral
Create Date: 2025-01-01 00:00:06

An anomaly that needs a person (a defense request without a validated
enrollment, a doctor whose role cannot be granted…) stays in the source data
until someone fixes it; the ledger makes the nightly job report it once, not
every night, and forget it once it is gone.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006_consistency"
down_revision: str | None = "0004_archive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "anomalie_signalee",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("check_name", sa.String(50), nullable=False),
        sa.Column("record_key", sa.String(255), nullable=False),
        sa.Column("first_seen", Ts, nullable=False),
        sa.Column("last_seen", Ts, nullable=False),
        sa.Column("job_execution_id", sa.BigInteger),
        sa.UniqueConstraint("check_name", "record_key", name="uk_anomalie_check_record"),
    )


def downgrade() -> None:
    op.drop_table("anomalie_signalee")
