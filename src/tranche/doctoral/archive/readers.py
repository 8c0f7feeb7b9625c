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
databases cannot be joined in SQL). Pages are keyset by id, so a restart
resumes after the last committed chunk.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from tranche.core.db import Database
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

__all__ = ["CandidateReader", "defense_candidates", "enrollment_candidates"]


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


class CandidateReader:
    """Ids from ``query`` (its first column, ``id``) on ``source`` not yet in ``archived``."""

    def __init__(
        self,
        source: Database,
        query: sa.Select[Any],
        id_column: sa.ColumnElement[Any],
        batchdb: Database,
        archived: sa.Table,
        page_size: int,
    ) -> None:
        self.source, self.batchdb, self.archived = source, batchdb, archived
        self.query, self.id_column = query, id_column
        self.page_size = page_size
        self._buffer: deque[int] = deque()
        self._last_read: int | None = None
        self._last_fetched: int | None = None
        self._exhausted = False

    async def open(self, position: Any | None) -> None:
        self._last_read = self._last_fetched = None if position is None else int(position)
        self._buffer.clear()
        self._exhausted = False

    async def read(self) -> int | None:
        while not self._buffer and not self._exhausted:
            await self._fetch()
        if not self._buffer:
            return None
        self._last_read = self._buffer.popleft()
        return self._last_read

    def position(self) -> int | None:
        return self._last_read

    async def close(self) -> None:
        self._buffer.clear()

    async def _fetch(self) -> None:
        query = self.query.order_by(self.id_column).limit(self.page_size)
        if self._last_fetched is not None:
            query = query.where(self.id_column > self._last_fetched)
        async with self.source.sessions() as s:
            ids = [int(i) for i in (await s.execute(query)).scalars()]
        self._exhausted = len(ids) < self.page_size
        if not ids:
            return
        self._last_fetched = ids[-1]
        async with self.batchdb.sessions() as s:
            done = set(
                (
                    await s.execute(
                        sa.select(self.archived.c.id).where(self.archived.c.id.in_(ids))
                    )
                ).scalars()
            )
        self._buffer.extend(i for i in ids if i not in done)
