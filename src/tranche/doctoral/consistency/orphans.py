"""Check 4: files in the uploads directory that no enrollment document references.

inscription-service stores uploads flat in its ``app.upload.dir``
(``<type>_<epochMillis>_<doctorantId>_<8 chars>.<ext>``) and attestations in
``uploads/attestations/``, each path in a ``chemin_fichier`` (``documents_inscription``,
``documents_generes``) — relative to that service's working directory, which
is not ours. A file therefore counts as referenced when its path relative to
the uploads directory is a trailing part of any stored path
(``./uploads/cv_1.pdf``, ``/srv/inscription/uploads/cv_1.pdf`` and ``cv_1.pdf``
all reference ``cv_1.pdf``). That errs on the safe side: an ambiguous file is
kept, never moved.

An orphan is moved (never deleted) to ``<uploads>/orphelins/``, keeping its
relative path; a name already taken there gets ``_1``, ``_2``… before its
extension, and the move itself refuses to overwrite (a hard link, then the
unlink), so two runs cannot clobber each other's quarantine. A file younger
than the grace period (by its mtime, relative to the run's instant) is left
alone: it may be an upload whose row is not committed yet.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath, PureWindowsPath

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.consistency.anomalies import Anomaly, Check, is_dry_run, record
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.jobs.common import add_counts, run_at
from tranche.doctoral.tables.inscription_db import documents_generes, documents_inscription

__all__ = [
    "QUARANTINE",
    "UploadFile",
    "is_referenced",
    "load_reference_tails",
    "orphans",
    "quarantine",
    "reference_tails",
    "scan",
    "tasklet",
]

log = get_logger(__name__)
CHECK = Check.ORPHAN_FILES
#: Sub-directory of the uploads directory the orphans are moved to.
QUARANTINE = "orphelins"


@dataclass(frozen=True)
class UploadFile:
    relative: str  # POSIX path relative to the uploads directory
    mtime: float


def _parts(stored: str) -> list[str]:
    # Stored by a Java service, possibly on Windows: both separators count.
    text = stored.strip()
    path = PureWindowsPath(text) if "\\" in text else PurePosixPath(text)
    return [p for p in path.parts if p not in ("", ".", "/", "\\") and not p.endswith(":\\")]


def reference_tails(stored_paths: Iterable[str]) -> set[str]:
    """Every trailing part of every stored path (``a/b/c`` → ``c``, ``b/c``, ``a/b/c``)."""
    tails: set[str] = set()
    for stored in stored_paths:
        parts = _parts(stored)
        for k in range(1, len(parts) + 1):
            tails.add("/".join(parts[-k:]))
    return tails


def is_referenced(relative: str, tails: set[str]) -> bool:
    return relative in tails


def orphans(
    files: Iterable[UploadFile], tails: set[str], now: datetime, grace: timedelta
) -> tuple[list[UploadFile], int]:
    """The unreferenced files older than ``grace``, and how many young ones were left alone."""
    limit = (now - grace).timestamp()
    out, young = [], 0
    for f in files:
        if is_referenced(f.relative, tails):
            continue
        if f.mtime > limit:
            young += 1
            continue
        out.append(f)
    return out, young


def scan(root: Path) -> Iterator[UploadFile]:
    """The regular files under ``root`` (symlinks not followed), the quarantine excluded."""
    for directory, subdirs, names in os.walk(root):
        here = Path(directory)
        if here == root:
            subdirs[:] = [d for d in subdirs if d != QUARANTINE]
        subdirs.sort()
        for name in sorted(names):
            path = here / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # removed while we looked: not ours to worry about
            if path.is_symlink() or not path.is_file():
                continue
            yield UploadFile(path.relative_to(root).as_posix(), info.st_mtime)


def quarantine(root: Path, relative: str) -> Path:
    """Move ``root/relative`` into ``root/orphelins/`` without ever overwriting; the new path."""
    source = root / relative
    target = root / QUARANTINE / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    stem, suffix = target.stem, target.suffix
    n = 0
    while True:
        candidate = target if n == 0 else target.with_name(f"{stem}_{n}{suffix}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            n += 1
            continue
        except OSError:
            # No hard links on this file system: rename unless the name is taken.
            if candidate.exists():
                n += 1
                continue
            os.rename(source, candidate)
            return candidate
        os.unlink(source)
        return candidate


async def load_reference_tails(db: Database, page_size: int) -> set[str]:
    """The stored paths of both document tables, read in keyset pages, as tails."""
    tails: set[str] = set()
    for table in (documents_inscription, documents_generes):
        after = 0
        while True:
            query = (
                sa.select(table.c.id, table.c.chemin_fichier)
                .where(table.c.id > after)
                .order_by(table.c.id)
                .limit(page_size)
            )
            async with db.sessions() as s:
                rows = (await s.execute(query)).all()
            tails |= reference_tails(str(r.chemin_fichier) for r in rows if r.chemin_fichier)
            if len(rows) < page_size:
                break
            after = int(rows[-1].id)
    return tails


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        dry = is_dry_run(ctx)
        root = deps.settings.uploads_path.resolve()
        if not root.is_dir():
            log.warning("consistency_no_uploads_dir", path=str(root))
            return RepeatStatus.FINISHED
        tails = await load_reference_tails(deps.sources.inscription_db, max(deps.chunk_size, 1000))
        grace = timedelta(hours=deps.settings.orphan_grace_hours)
        files = await asyncio.to_thread(lambda: list(scan(root)))
        found, young = orphans(files, tails, run_at(ctx), grace)
        anomalies = []
        for f in found:
            if dry:
                action = f"À faire : déplacer vers {QUARANTINE}/"
            else:
                try:
                    moved = await asyncio.to_thread(quarantine, root, f.relative)
                except FileNotFoundError:
                    continue  # gone since the scan
                action = f"Déplacé vers {moved.relative_to(root).as_posix()}"
            anomalies.append(
                Anomaly(CHECK, f"file:{f.relative}", f"uploads/{f.relative}", action, not dry)
            )
        record(ctx, anomalies)
        add_counts(ctx, {"fichiersRecentsIgnores": young})
        ctx.count(read=len(files), write=0 if dry else len(anomalies))
        log.info(
            "consistency_orphans",
            files=len(files),
            orphans=len(anomalies),
            young=young,
            dry_run=dry,
        )
        return RepeatStatus.FINISHED

    return call
