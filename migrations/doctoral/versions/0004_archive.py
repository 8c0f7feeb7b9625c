"""doctoral: archiveJob's tables (inscription_archive, defense_archive, archive_audit_trail)

Revision ID: 0004_archive
Revises: 0002_doctoral
Create Date: 2025-01-01 00:00:04

The original batch-service's archive tables (its columns, never created by
its own Flyway setup), plus the JSON document of the archived rows, the key
id and checksum of each archive file, and when the owners' files were removed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0004_archive"
down_revision: str | None = "0003_report_deliveries"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _archive_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("archived_date", Ts, nullable=False),
        sa.Column("archived_by", sa.String(50), nullable=False),
        sa.Column("archive_location", sa.String(500), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("archive_size", sa.BigInteger, nullable=False),
        sa.Column("files_count", sa.Integer, nullable=False),
        sa.Column("uncompressed_size", sa.BigInteger, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("job_execution_id", sa.BigInteger),
        sa.Column("originals_removed_at", Ts),
        sa.Column("bytes_freed", sa.BigInteger),
    ]


def upgrade() -> None:
    op.create_table(
        "inscription_archive",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("doctorant_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("date_validation", Ts),
        sa.Column("date_rejection", Ts),
        sa.Column("motif_refus", sa.Text),
        sa.Column("date_premiere_inscription", Ts),
        sa.Column("annee_universitaire", sa.Integer),
        sa.Column("discipline", sa.String(255)),
        sa.Column("laboratoire", sa.String(255)),
        sa.Column("directeur_these_id", sa.BigInteger, nullable=False),
        sa.Column("co_directeur_these_id", sa.BigInteger),
        sa.Column("sujet_these", sa.String(500), nullable=False),
        sa.Column("has_derogation", sa.Boolean, nullable=False),
        sa.Column("derogation_motif", sa.String(2000)),
        sa.Column("derogation_date", Ts),
        *_archive_columns(),
    )
    op.create_index(
        "ix_inscription_archive_pending", "inscription_archive", ["originals_removed_at"]
    )
    op.create_table(
        "defense_archive",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("defense_request_id", sa.BigInteger),
        sa.Column("doctorant_id", sa.BigInteger),
        sa.Column("inscription_id", sa.BigInteger),
        sa.Column("defense_date", sa.Date),
        sa.Column("defense_time", sa.Time),
        sa.Column("location", sa.String(255)),
        sa.Column("mention", sa.String(50)),
        sa.Column("jury_id", sa.BigInteger),
        sa.Column("pv_signed", sa.Boolean, nullable=False),
        sa.Column("pv_file_path", sa.String(500)),
        sa.Column("rapport_file_path", sa.String(500)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", Ts),
        sa.Column("updated_at", Ts),
        *_archive_columns(),
    )
    op.create_index("ix_defense_archive_pending", "defense_archive", ["originals_removed_at"])
    op.create_table(
        "archive_audit_trail",
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("entity_type", sa.String(20), nullable=False),
        sa.Column("entity_id", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("archive_location", sa.String(500), nullable=False),
        sa.Column("archived_by", sa.String(50), nullable=False),
        sa.Column("archived_date", Ts, nullable=False),
        sa.Column("uncompressed_size", sa.BigInteger, nullable=False),
        sa.Column("compressed_size", sa.BigInteger, nullable=False),
        sa.Column("job_execution_id", sa.BigInteger),
    )
    op.create_index("ix_archive_trail_entity", "archive_audit_trail", ["entity_type", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_archive_trail_entity", table_name="archive_audit_trail")
    op.drop_table("archive_audit_trail")
    op.drop_index("ix_defense_archive_pending", table_name="defense_archive")
    op.drop_table("defense_archive")
    op.drop_index("ix_inscription_archive_pending", table_name="inscription_archive")
    op.drop_table("inscription_archive")
