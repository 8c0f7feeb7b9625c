"""``/api/batch/console``: the read-only JSON the admin console needs beyond the jobs API.

ROLE_ADMIN only, like every ``/api/batch/**`` route. Four views, each computed
in batchdb: the finished executions across jobs with filters (the history
table), the success rate and mean duration per day (the statistics chart), the
anomalies of the last ``dataConsistencyJob`` run (its execution context), and
the audit log with the result of recomputing its hash chain.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from tranche.core.errors import NotFound
from tranche.doctoral.audit import verify_chain
from tranche.doctoral.auth import AdminDep
from tranche.doctoral.consistency.anomalies import (
    ANOMALIES_KEY,
    DRY_RUN_KEY,
    TITLES,
    Check,
    totals,
)
from tranche.doctoral.consistency.report import REPORT_KEY
from tranche.doctoral.jobs import data_consistency
from tranche.doctoral.models import audit_log, job_execution_history, utc_naive
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import UtcTime, format_duration

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an invalid or expired one"},
    403: {"description": "The token does not hold ROLE_ADMIN"},
}
MAX_PAGE_SIZE = 100
STATUSES = ("COMPLETED", "FAILED", "STOPPED", "ABANDONED")
H = job_execution_history

router = APIRouter(prefix="/api/batch/console", tags=["Batch Console"], responses=_ERRORS)


class _Dto(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


class HistoryEntry(_Dto):
    execution_id: int = Field(alias="executionId")
    job_name: str = Field(alias="jobName")
    status: str
    start_time: UtcTime = Field(alias="startTime")
    end_time: UtcTime | None = Field(alias="endTime")
    duration: str
    items_processed: int = Field(alias="itemsProcessed")
    items_failed: int = Field(alias="itemsFailed")
    exit_message: str | None = Field(alias="exitMessage")
    triggered_by: str | None = Field(alias="triggeredBy")


class DayStats(_Dto):
    day: date
    executions: int
    completed: int
    failed: int
    success_rate: float = Field(alias="successRate", ge=0, le=100)
    average_seconds: float | None = Field(alias="averageSeconds")


class AnomalyCheck(_Dto):
    check: str
    title: str
    corrected: int
    manual: int
    records: list[dict[str, Any]]


class LastAnomalies(_Dto):
    execution_id: int | None = Field(alias="executionId")
    status: str | None
    start_time: UtcTime | None = Field(alias="startTime")
    dry_run: bool = Field(alias="dryRun")
    report: str | None = Field(description="The anomaly report's file name, when one was written")
    checks: list[AnomalyCheck]


class ChainResult(_Dto):
    ok: bool
    rows: int
    head_hash: str = Field(alias="headHash")
    broken_seq: int | None = Field(alias="brokenSeq")
    reason: str | None


class AuditEntry(_Dto):
    seq: int
    timestamp: UtcTime
    event_type: str = Field(alias="eventType")
    event_action: str = Field(alias="eventAction")
    job_name: str | None = Field(alias="jobName")
    execution_id: int | None = Field(alias="executionId")
    user_id: str | None = Field(alias="userId")
    status: str | None
    details: str | None
    ip_address: str | None = Field(alias="ipAddress")


class AuditPage(_Dto):
    verification: ChainResult
    total: int
    entries: list[AuditEntry]


def _filters(job: str | None, status: str | None) -> list[sa.ColumnElement[bool]]:
    where = []
    if job:
        where.append(H.c.job_name == job)
    if status:
        where.append(H.c.status == status)
    return where


@router.get(
    "/history",
    summary="Finished executions of every job, newest first (header X-Total-Count)",
    response_model=list[HistoryEntry],
    response_model_by_alias=True,
    responses={404: {"description": "Unknown job"}},
)
async def history(
    request: Request,
    response: Response,
    _admin: AdminDep,
    job: Annotated[str | None, Query(max_length=100, description="Only this job")] = None,
    status: Annotated[
        str | None, Query(pattern="^(" + "|".join(STATUSES) + ")$", description="Only this status")
    ] = None,
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page")] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
) -> list[HistoryEntry]:
    runtime = _runtime(request)
    if job and job not in runtime.specs:
        raise NotFound(f"Unknown job '{job}' (known jobs: {', '.join(sorted(runtime.specs))})")
    where = _filters(job, status)
    async with runtime.sources.batchdb.sessions() as s:
        total = (await s.execute(sa.select(sa.func.count()).select_from(H).where(*where))).scalar()
        rows = (
            await s.execute(
                sa.select(H)
                .where(*where)
                .order_by(H.c.start_time.desc(), H.c.job_execution_id.desc())
                .offset(page * size)
                .limit(size)
            )
        ).all()
    response.headers["X-Total-Count"] = str(total or 0)
    return [
        HistoryEntry(
            execution_id=r.job_execution_id,
            job_name=r.job_name,
            status=r.status,
            start_time=r.start_time,
            end_time=r.end_time,
            duration=format_duration(r.end_time - r.start_time if r.end_time else None),
            items_processed=r.items_processed,
            items_failed=r.items_failed,
            exit_message=r.exit_message,
            triggered_by=r.triggered_by,
        )
        for r in rows
    ]


@router.get(
    "/timeline",
    summary="Per day (UTC): executions, success rate and mean duration, oldest first",
    response_model=list[DayStats],
    response_model_by_alias=True,
)
async def timeline(
    request: Request,
    _admin: AdminDep,
    days: Annotated[int, Query(ge=1, le=366, description="How many days back")] = 30,
) -> list[DayStats]:
    runtime = _runtime(request)
    since = utc_naive(runtime.clock() - timedelta(days=days))
    async with runtime.sources.batchdb.sessions() as s:
        rows = (
            await s.execute(
                sa.select(H.c.start_time, H.c.end_time, H.c.status).where(H.c.start_time >= since)
            )
        ).all()
    # Grouped here rather than in SQL: date functions differ on SQLite, MariaDB and PostgreSQL.
    by_day: dict[date, list[Any]] = {}
    for r in rows:
        by_day.setdefault(r.start_time.date(), []).append(r)
    out = []
    for day in sorted(by_day):
        runs = by_day[day]
        completed = sum(1 for r in runs if r.status == "COMPLETED")
        failed = sum(1 for r in runs if r.status == "FAILED")
        spans = [(r.end_time - r.start_time).total_seconds() for r in runs if r.end_time]
        out.append(
            DayStats(
                day=day,
                executions=len(runs),
                completed=completed,
                failed=failed,
                success_rate=round(100.0 * completed / len(runs), 2),
                average_seconds=round(sum(spans) / len(spans), 3) if spans else None,
            )
        )
    return out


@router.get(
    "/anomalies",
    summary="The anomalies found by the last dataConsistencyJob execution",
    response_model=LastAnomalies,
    response_model_by_alias=True,
)
async def anomalies(request: Request, _admin: AdminDep) -> LastAnomalies:
    runtime = _runtime(request)
    last = await runtime.repository.last_job_execution(data_consistency.JOB_NAME)
    if last is None:
        return LastAnomalies(
            execution_id=None, status=None, start_time=None, dry_run=False, report=None, checks=[]
        )
    listed = dict(last.context.get(ANOMALIES_KEY, {}))
    checks = [
        AnomalyCheck(
            check=check.value,
            title=TITLES[check],
            corrected=fixed,
            manual=manual,
            records=list(listed.get(check.value, [])),
        )
        for check, (fixed, manual) in totals(last.context).items()
    ]
    report = last.context.get(REPORT_KEY)
    return LastAnomalies(
        execution_id=last.id,
        status=last.status.value,
        start_time=last.start_time or last.create_time,
        dry_run=bool(last.context.get(DRY_RUN_KEY, False)),
        report=report if isinstance(report, str) else None,
        checks=sorted(checks, key=lambda c: list(Check).index(Check(c.check))),
    )


@router.get(
    "/audit",
    summary="The audit log, newest first, with the result of verifying its hash chain",
    response_model=AuditPage,
    response_model_by_alias=True,
)
async def audit(
    request: Request,
    _admin: AdminDep,
    event_type: Annotated[
        str | None, Query(alias="eventType", max_length=30, description="Only this event type")
    ] = None,
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page")] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 50,
) -> AuditPage:
    db = _runtime(request).sources.batchdb
    chain = await verify_chain(db)
    A = audit_log
    where = [A.c.event_type == event_type] if event_type else []
    async with db.sessions() as s:
        total = (await s.execute(sa.select(sa.func.count()).select_from(A).where(*where))).scalar()
        rows = (
            await s.execute(
                sa.select(A).where(*where).order_by(A.c.seq.desc()).offset(page * size).limit(size)
            )
        ).all()
    return AuditPage(
        verification=ChainResult(
            ok=chain.ok,
            rows=chain.rows,
            head_hash=chain.head_hash,
            broken_seq=chain.broken_seq,
            reason=chain.reason,
        ),
        total=int(total or 0),
        entries=[
            AuditEntry(
                seq=r.seq,
                timestamp=r.timestamp.replace(tzinfo=UTC),
                event_type=r.event_type,
                event_action=r.event_action,
                job_name=r.job_name,
                execution_id=r.execution_id,
                user_id=r.user_id,
                status=r.status,
                details=r.details,
                ip_address=r.ip_address,
            )
            for r in rows
        ],
    )
