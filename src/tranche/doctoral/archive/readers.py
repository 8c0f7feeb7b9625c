"""Which enrollments and defenses are due for archiving, read by their owners' real schemas.

* **Enrollments**: ``VALIDE`` with ``date_validation`` before the cutoff, or
  ``REJETE`` whose rejection — the owner has no rejection date, so the latest
  ``validations_inscription.date_validation`` of its ``REJETE`` rows — is
  before the cutoff. A REJETE enrollment without such a row has no known
  closing date and is left alone.
* **Defenses**: ``COMPLETED`` defenses held (``defense_date``) before the
  cutoff that have a procès-verbal (``proces_verbal_url`` set).

The cutoff is the run's ``runAt`` minus ``DOCTORAL_ARCHIVE_AFTER_MONTHS`` (12).
The owners have no ``archived`` column and their services still read these
rows, so the rows stay; ids already archived are those in batchdb's
``inscription_archive`` / ``defense_archive``, filtered out page by page (the
databases cannot be joined in SQL), by the engine's one keyset reader
(:class:`~tranche.batch.readers.KeysetReader`), so a restart resumes after the last
committed chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tranche.batch.readers import KeysetReader
from tranche.core.db import Database
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

__all__ = ["candidate_reader", "defense_candidates", "enrollment_candidates"]


def rejection_dates() -> sa.Subquery:
    """Per enrollment, when it was rejected (its latest REJETE validation)."""
    V = I.validations_inscription
    return (
        sa.select(V.c.inscription_id, sa.func.max(V.c.date_validation).label("rejected_at"))
        .where(V.c.statut == "REJETE")
        .group_by(V.c.inscription_id)
        .subquery("rejections")
    )


def enrollment_candidates(cutoff: datetime) -> sa.Select[Any]:
    ins, rejected = I.inscriptions, rejection_dates()
    return (
        sa.select(ins.c.id)
        .select_from(ins.outerjoin(rejected, rejected.c.inscription_id == ins.c.id))
        .where(
            sa.or_(
                sa.and_(ins.c.statut == "VALIDE", ins.c.date_validation < cutoff),
                sa.and_(ins.c.statut == "REJETE", rejected.c.rejected_at < cutoff),
            )
        )
    )


def defense_candidates(cutoff: datetime) -> sa.Select[Any]:
    d = D.defenses
    return sa.select(d.c.id).where(
        d.c.status == "COMPLETED",
        d.c.defense_date < cutoff,
        d.c.proces_verbal_url.is_not(None),
        d.c.proces_verbal_url != "",
    )


def candidate_reader(
    source: Database,
    query: sa.Select[Any],
    id_column: sa.ColumnElement[Any],
    batchdb: Database,
    archived: sa.Table,
    page_size: int,
) -> KeysetReader[int]:
    """Ids from ``query`` (selecting ``id_column``) on ``source`` not yet in ``archived``.

    A keyset page of ids, less those batchdb's ``archived`` already holds (one lookup per
    page); the position is the last id handed out, so a restart resumes after it.
    """

    async def not_archived(rows: Sequence[sa.RowMapping]) -> list[int | None]:
        ids = [int(row[id_column]) for row in rows]
        async with batchdb.sessions() as s:
            done = set(
                (await s.execute(sa.select(archived.c.id).where(archived.c.id.in_(ids)))).scalars()
            )
        return [None if i in done else i for i in ids]

    return KeysetReader(
        source.engine, query, [id_column], page_size=page_size, map_page=not_archived
    )
