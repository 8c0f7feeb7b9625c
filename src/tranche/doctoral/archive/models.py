"""batchdb's archive tables: the original's columns, plus what makes an archive checkable.

``inscription_archive`` / ``defense_archive`` keep the original batch-service's
columns (id = the owner's id); many of them have no source in the owners' real
schemas (reference §8, mismatch 3) and stay NULL (``co_directeur_these_id``,
``rapport_file_path``, ``created_at``/``updated_at`` of a defense). Added:
``document`` (the record and every related row as JSON, as in the archive's
manifest), the key id, the archive's SHA-256 and size, and
``originals_removed_at``: NULL while the owners' files are still on disk, set
once they were removed after the row committed — rows with NULL there are
what a re-run finishes first.

``archive_audit_trail`` is the original's trail (sizes per archive) with an
``action``: ``ARCHIVED`` when the row commits, ``ORIGINALS_REMOVED`` when the
files are gone.
"""

from __future__ import annotations

import sqlalchemy as sa

from tranche.doctoral.models import Pk, Ts, metadata

__all__ = ["archive_audit_trail", "defense_archive", "inscription_archive"]


def _archive_columns() -> list[sa.Column[object]]:
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


inscription_archive = sa.Table(
    "inscription_archive",
    metadata,
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
    sa.Index("ix_inscription_archive_pending", "originals_removed_at"),
)

defense_archive = sa.Table(
    "defense_archive",
    metadata,
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
    sa.Index("ix_defense_archive_pending", "originals_removed_at"),
)

archive_audit_trail = sa.Table(
    "archive_audit_trail",
    metadata,
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
    sa.Index("ix_archive_trail_entity", "entity_type", "entity_id"),
)
