"""Archive a chunk of records without ever losing a document, whatever crashes when.

Per chunk, in this order:

1. each record's archive is written to a temporary name, fsynced, verified and
   renamed (:func:`~tranche.doctoral.archive.format.write_archive`);
2. its ``inscription_archive``/``defense_archive`` row and ``ARCHIVED`` audit
   entry are inserted in the chunk's batchdb transaction, which commits with
   the step's checkpoint;
3. only after that commit (:meth:`ArchiveWriter.after_chunk`) are the owners'
   files removed — and only once the archive on disk still has the SHA-256
   recorded in its row — then ``originals_removed_at`` and an
   ``ORIGINALS_REMOVED`` entry are committed.

A crash before (2) commits leaves the original files and at worst an archive
file without a row (the record stays a candidate and is archived again). A
chunk that rolls back deletes the archives it wrote. A crash between (2) and
(3) leaves rows whose ``originals_removed_at`` is NULL: every archive step
starts (and every chunk ends) by finishing those, so a re-run completes the
removal. The row's primary key is the owner's id, so a record is never
archived twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.batch.listeners import BatchListener
from tranche.batch.model import StepExecution
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.archive.format import archive_name, check_writable, file_sha256, write_archive
from tranche.doctoral.archive.keys import Keyring
from tranche.doctoral.archive.models import archive_audit_trail
from tranche.doctoral.archive.records import ArchiveRecord
from tranche.doctoral.jobs.common import run_at
from tranche.doctoral.models import utc_naive

__all__ = ["ARCHIVED_BY", "ArchiveWriter", "remove_originals"]

log = get_logger(__name__)

ARCHIVED_BY = "SYSTEM"
_SWEEP_PAGE = 100


def _now() -> datetime:
    return utc_naive(datetime.now(UTC))


def _sha256_or_none(path: Path) -> str | None:
    return file_sha256(path) if path.is_file() else None


def _remove_files(entries: list[dict[str, Any]]) -> int:
    freed = 0
    for entry in entries:
        if not entry.get("removable") or not entry.get("path"):
            continue
        path = Path(entry["path"])
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue  # removed by an earlier attempt that crashed before recording it
        freed += size
    return freed


async def remove_originals(
    batchdb: Database, table: sa.Table, entity: str, execution_id: int | None
) -> tuple[int, int]:
    """Remove the originals of committed archives still holding them; (records, bytes) done.

    An archive that is missing or whose SHA-256 differs from its row keeps its
    originals (logged as an error for a person to look at).
    """
    last, records, freed = -1, 0, 0
    while True:
        query = (
            sa.select(
                table.c.id, table.c.archive_location, table.c.archive_sha256, table.c.document
            )
            .where(table.c.originals_removed_at.is_(None), table.c.id > last)
            .order_by(table.c.id)
            .limit(_SWEEP_PAGE)
        )
        async with batchdb.sessions() as s:
            rows = (await s.execute(query)).all()
        if not rows:
            return records, freed
        last = int(rows[-1].id)
        for row in rows:
            archive = Path(row.archive_location)
            digest = await asyncio.to_thread(_sha256_or_none, archive)
            if digest != row.archive_sha256:
                log.error(
                    "archive_unverified_originals_kept",
                    entity=entity,
                    id=row.id,
                    archive=str(archive),
                    reason="missing" if digest is None else "SHA-256 differs from its row",
                )
                continue
            files = list((row.document or {}).get("files", []))
            n = await asyncio.to_thread(_remove_files, files)
            async with batchdb.transaction() as s:
                await s.execute(
                    sa.update(table)
                    .where(table.c.id == row.id)
                    .values(originals_removed_at=_now(), bytes_freed=n)
                )
                await s.execute(
                    sa.insert(archive_audit_trail).values(
                        entity_type=entity,
                        entity_id=row.id,
                        action="ORIGINALS_REMOVED",
                        archive_location=str(archive),
                        archived_by=ARCHIVED_BY,
                        archived_date=_now(),
                        uncompressed_size=n,
                        compressed_size=0,
                        job_execution_id=execution_id,
                    )
                )
            records, freed = records + 1, freed + n


class ArchiveWriter(BatchListener):
    """The chunk writer of one archive step, and the listener that finishes after commit."""

    def __init__(
        self,
        entity: str,
        table: sa.Table,
        batchdb: Database,
        keyring: Callable[[], Keyring],
        archives: Path,
    ) -> None:
        self.entity, self.table, self.batchdb = entity, table, batchdb
        self.keyring, self.archives = keyring, archives
        #: Archives written by the chunk being written: deleted if it rolls back.
        self._uncommitted: list[Path] = []

    async def before_step(self, step: StepExecution) -> None:
        # Fail before touching anything when the key or the directory is unusable.
        self.keyring().current()
        await asyncio.to_thread(check_writable, self.archives)
        await remove_originals(self.batchdb, self.table, self.entity, step.job_execution_id)

    async def write(self, records: Sequence[ArchiveRecord], ctx: StepContext) -> None:
        key_id, master = self.keyring().current()
        at = run_at(ctx)
        rows, trail = [], []
        for record in records:
            final = (
                self.archives / archive_name(self.entity.lower(), record.entity_id, at)
            ).resolve()
            manifest = {
                "entityType": record.entity,
                "entityId": record.entity_id,
                "archivedAt": at.isoformat(),
                "record": record.document,
            }
            self._uncommitted.append(final)
            written = await asyncio.to_thread(
                write_archive, final, manifest, record.files, key_id, master
            )
            now = _now()
            rows.append(
                {
                    **record.row,
                    "archived_date": now,
                    "archived_by": ARCHIVED_BY,
                    "archive_location": str(final),
                    "key_id": key_id,
                    "archive_sha256": written.sha256,
                    "archive_size": written.compressed_size,
                    "files_count": len(written.files),
                    "uncompressed_size": written.uncompressed_size,
                    "document": {"record": record.document, "files": written.files},
                    "job_execution_id": ctx.job_execution.id,
                }
            )
            trail.append(
                {
                    "entity_type": record.entity,
                    "entity_id": record.entity_id,
                    "action": "ARCHIVED",
                    "archive_location": str(final),
                    "archived_by": ARCHIVED_BY,
                    "archived_date": now,
                    "uncompressed_size": written.uncompressed_size,
                    "compressed_size": written.compressed_size,
                    "job_execution_id": ctx.job_execution.id,
                }
            )
        session = await ctx.session()
        await session.execute(sa.insert(self.table), rows)
        await session.execute(sa.insert(archive_audit_trail), trail)

    async def after_chunk(self, ctx: StepContext) -> None:
        self._uncommitted.clear()
        await remove_originals(self.batchdb, self.table, self.entity, ctx.job_execution.id)

    async def after_chunk_error(self, ctx: StepContext, error: BaseException) -> None:
        paths, self._uncommitted = self._uncommitted, []
        for path in paths:
            path.unlink(missing_ok=True)
        if paths:
            log.warning("archive_chunk_rolled_back", entity=self.entity, removed=len(paths))
