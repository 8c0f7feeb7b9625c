"""``job_execution_history``: one row per finished job execution, keyed by its execution id.

The original wrote this table with its own id and then served it under the same
path parameter as Spring Batch's execution id (reference §8, mismatch 11). Here
the row is keyed by the engine's job execution id, the one ``run`` returns, so
every endpoint speaks of the same execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tranche.batch.model import JobExecution
from tranche.core.db import Database
from tranche.doctoral.models import job_execution_history as H
from tranche.doctoral.models import utc_naive

__all__ = ["HistoryRow", "Summary", "record_run", "rows_by_id", "summary"]


@dataclass(frozen=True)
class HistoryRow:
    job_execution_id: int
    job_name: str
    start_time: datetime
    end_time: datetime | None
    status: str
    exit_code: str | None
    exit_message: str | None
    items_processed: int
    items_failed: int
    counts: dict[str, int]
    triggered_by: str | None


def _row(r: Any) -> HistoryRow:
    return HistoryRow(
        int(r.job_execution_id),
        r.job_name,
        r.start_time.replace(tzinfo=UTC),
        r.end_time.replace(tzinfo=UTC) if r.end_time else None,
        r.status,
        r.exit_code,
        r.exit_message,
        int(r.items_processed),
        int(r.items_failed),
        dict(r.counts or {}),
        r.triggered_by,
    )


async def record_run(
    db: Database, execution: JobExecution, counts: dict[str, int], triggered_by: str | None
) -> None:
    """Write (or, for a repeated call, rewrite) the row of a finished execution."""
    totals = execution.totals()
    values: dict[str, Any] = {
        "job_name": execution.job_name,
        "start_time": utc_naive(execution.start_time or execution.create_time or datetime.now(UTC)),
        "end_time": utc_naive(execution.end_time) if execution.end_time else None,
        "status": execution.status.value,
        "exit_code": execution.exit_status.exit_code[:100],
        "exit_message": execution.exit_status.exit_description or None,
        "items_processed": totals["read_count"],
        "items_failed": totals["read_skip_count"]
        + totals["process_skip_count"]
        + totals["write_skip_count"],
        "counts": counts,
        "triggered_by": (triggered_by or "")[:255] or None,
        "created_at": utc_naive(datetime.now(UTC)),
    }
    try:
        async with db.transaction() as s:
            await s.execute(sa.insert(H).values(job_execution_id=execution.id, **values))
    except IntegrityError:
        async with db.transaction() as s:
            await s.execute(
                sa.update(H).where(H.c.job_execution_id == execution.id).values(**values)
            )


async def rows_by_id(db: Database, ids: list[int]) -> dict[int, HistoryRow]:
    if not ids:
        return {}
    async with db.sessions() as s:
        rows = (await s.execute(sa.select(H).where(H.c.job_execution_id.in_(ids)))).all()
    return {int(r.job_execution_id): _row(r) for r in rows}


def _count_if(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


@dataclass(frozen=True)
class Summary:
    total: int
    completed: int
    failed: int
    average_seconds: float | None
    last_failure: HistoryRow | None


async def summary(db: Database) -> Summary:
    """Totals over every recorded execution, computed in the database."""
    async with db.sessions() as s:
        total, completed, failed = (
            await s.execute(
                # SUM(CASE …) rather than FILTER (WHERE …), which MariaDB lacks.
                sa.select(
                    sa.func.count(),
                    _count_if(H.c.status == "COMPLETED"),
                    _count_if(H.c.status == "FAILED"),
                )
            )
        ).one()
        finished = (
            await s.execute(
                sa.select(H.c.start_time, H.c.end_time).where(H.c.end_time.is_not(None))
            )
        ).all()
        last = (
            await s.execute(
                sa.select(H).where(H.c.status == "FAILED").order_by(H.c.start_time.desc()).limit(1)
            )
        ).first()
    durations = [(r.end_time - r.start_time).total_seconds() for r in finished]
    average = sum(durations) / len(durations) if durations else None
    return Summary(int(total), int(completed), int(failed), average, _row(last) if last else None)
