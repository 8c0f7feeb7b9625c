"""archiveJob's log cleanup: old successful notifications and application logs go, errors stay.

What is deleted (cutoffs relative to the run's ``runAt``):

* notification_db ``notifications`` with ``statut = 'SENT'`` and ``date_envoi``
  older than ``DOCTORAL_SENT_NOTIFICATION_RETENTION_MONTHS`` (3; the owner's own
  ``notification.cleanup-days=90``, never enforced by it). FAILED, PENDING and
  RETRYING rows and the whole ``notification_dlq`` are kept for ever;
* userdb ``user_audits`` older than ``DOCTORAL_USER_AUDIT_RETENTION_DAYS``
  (365, user-service's own ``audit.retention-days``, never enforced by it);
  0 keeps them;
* files under ``DOCTORAL_APPLICATION_LOG_DIR`` last modified more than
  ``DOCTORAL_APPLICATION_LOG_RETENTION_MONTHS`` (6) ago, except error logs:
  names matching ``DOCTORAL_ERROR_LOG_PATTERNS`` (``*error*``, ``*.err``) are
  kept for ever.

Rows are deleted by id in slices of :data:`SLICE`, each slice committed with
the step's checkpoint (the tasklet returns CONTINUABLE), and every delete
re-checks its condition, so a re-run after a crash deletes nothing it should
not. Log files are deleted once the tables are done.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.batch.job import RepeatStatus
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.doctoral.durations import add_months
from tranche.doctoral.jobs.common import add_counts, run_at
from tranche.doctoral.models import utc_naive
from tranche.doctoral.tables.notification_db import notifications
from tranche.doctoral.tables.userdb import user_audits

__all__ = [
    "SLICE",
    "CleanupPolicy",
    "LogCleanup",
    "delete_old_user_audits",
    "delete_sent_notifications",
    "is_error_log",
    "old_log_files",
]

SLICE = 1000


def _months_before(at: datetime, months: int) -> datetime:
    day = add_months(at.date(), -months)
    return datetime.combine(day, at.time())


@dataclass(frozen=True)
class CleanupPolicy:
    sent_notification_months: int
    log_months: int
    user_audit_days: int
    log_dir: Path | None
    error_patterns: tuple[str, ...]

    def notifications_before(self, at: datetime) -> datetime:
        return _months_before(utc_naive(at), self.sent_notification_months)

    def logs_before(self, at: datetime) -> datetime:
        return _months_before(utc_naive(at), self.log_months)

    def user_audits_before(self, at: datetime) -> datetime | None:
        return (
            utc_naive(at) - timedelta(days=self.user_audit_days) if self.user_audit_days else None
        )


async def _delete_slice(
    session: AsyncSession, table: sa.Table, condition: sa.ColumnElement[bool]
) -> int:
    ids = list(
        (
            await session.execute(
                sa.select(table.c.id).where(condition).order_by(table.c.id).limit(SLICE)
            )
        ).scalars()
    )
    if not ids:
        return 0
    result = await session.execute(sa.delete(table).where(table.c.id.in_(ids), condition))
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_sent_notifications(session: AsyncSession, before: datetime) -> int:
    """One slice of SENT notifications sent before ``before``; how many were deleted."""
    n = notifications.c
    return await _delete_slice(
        session, notifications, sa.and_(n.statut == "SENT", n.date_envoi < before)
    )


async def delete_old_user_audits(session: AsyncSession, before: datetime) -> int:
    return await _delete_slice(session, user_audits, user_audits.c.timestamp < before)


def is_error_log(name: str, patterns: Sequence[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatch(lowered, p.lower()) for p in patterns)


def old_log_files(directory: Path, before: datetime, patterns: Sequence[str]) -> Iterator[Path]:
    """Regular files under ``directory`` modified before ``before`` (UTC) that are not errors."""
    limit = before.replace(tzinfo=UTC).timestamp()
    for path in directory.rglob("*"):
        if path.is_symlink() or not path.is_file() or is_error_log(path.name, patterns):
            continue
        if path.stat().st_mtime < limit:
            yield path


def _delete_files(directory: Path, before: datetime, patterns: Sequence[str]) -> tuple[int, int]:
    count = freed = 0
    for path in list(old_log_files(directory, before, patterns)):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        count, freed = count + 1, freed + size
    return count, freed


class LogCleanup:
    """The ``cleanupLogsStep`` tasklet."""

    def __init__(self, notification_db: Database, userdb: Database, policy: CleanupPolicy) -> None:
        self.notification_db, self.userdb, self.policy = notification_db, userdb, policy

    async def __call__(self, ctx: StepContext) -> RepeatStatus:
        at = run_at(ctx)
        session = await ctx.session(self.notification_db.engine)
        sent = await delete_sent_notifications(session, self.policy.notifications_before(at))
        audits = 0
        audit_cutoff = self.policy.user_audits_before(at)
        if audit_cutoff is not None:
            audits = await delete_old_user_audits(
                await ctx.session(self.userdb.engine), audit_cutoff
            )
        counts: dict[str, Any] = {"notificationsDeleted": sent, "userAuditsDeleted": audits}
        ctx.count(write=sent + audits)
        if sent == SLICE or audits == SLICE:
            add_counts(ctx, counts)
            return RepeatStatus.CONTINUABLE
        if self.policy.log_dir is not None and self.policy.log_dir.is_dir():
            files, freed = await asyncio.to_thread(
                _delete_files,
                self.policy.log_dir,
                self.policy.logs_before(at),
                self.policy.error_patterns,
            )
            counts.update(logFilesDeleted=files, logBytesFreed=freed)
        add_counts(ctx, counts)
        return RepeatStatus.FINISHED
