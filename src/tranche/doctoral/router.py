"""``/api/batch/jobs``: the admin API of the original batch-service (reference §8).

Every route needs a user-service token with ROLE_ADMIN (``AdminDep``); the
trigger is also rate-limited per admin. Paths and field names are the
original's; where it answered an empty 500 these answer JSON errors. Routes
take what they need as the ``Annotated`` aliases declared below (``RuntimeDep``,
``LimiterDep``, ``AdminDep``) and call :mod:`tranche.doctoral.service`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tranche.core.errors import ApiError
from tranche.core.http import from_app_state
from tranche.doctoral import service
from tranche.doctoral.auth import AdminDep, TriggerLimiter
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import (
    GlobalStats,
    JobAbandonResponse,
    JobExecutionDetailDTO,
    JobExecutionDTO,
    JobInfo,
    JobRestartResponse,
    JobStopResponse,
    JobTriggerResponse,
)

__all__ = ["LimiterDep", "RuntimeDep", "router"]

MAX_PAGE_SIZE = 100
#: Execution ids are signed 64-bit in batchdb; a larger one is a bad request, not a 500.
MAX_ID = 2**63 - 1
ExecutionId = Annotated[
    int, Path(alias="executionId", ge=1, le=MAX_ID, description="The engine's execution id")
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or an invalid or expired one"},
    403: {"description": "The token does not hold ROLE_ADMIN"},
}

router = APIRouter(prefix="/api/batch/jobs", tags=["Batch Job Management"], responses=_ERRORS)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
LimiterDep = Annotated[TriggerLimiter, Depends(from_app_state("trigger_limiter"))]


@router.post(
    "/{jobName}/run",
    summary="Trigger a batch job manually",
    response_model=JobTriggerResponse,
    response_model_by_alias=True,
    responses={
        400: {"description": "dryRun or month asked of a job that has none, or a bad month"},
        404: {"description": "Unknown job"},
        409: {"description": "The job is already running"},
        429: {"description": "Too many triggers by this admin (see Retry-After)"},
    },
)
async def run_job(
    request: Request,
    runtime: RuntimeDep,
    limiter: LimiterDep,
    admin: AdminDep,
    job_name: Annotated[str, Path(alias="jobName", max_length=100, examples=["tokenCleanupJob"])],
    dry_run: Annotated[
        bool,
        Query(alias="dryRun", description="Find and report only, change nothing (jobs that can)"),
    ] = False,
    month: Annotated[
        str | None,
        Query(
            max_length=20,
            description="monthlyReportJob: the month to report on, YYYY-MM (default: last month)",
            examples=["2025-02"],
        ),
    ] = None,
) -> JobTriggerResponse:
    if job_name in runtime.specs:
        try:
            await limiter.hit(admin.email)
        except ApiError as refused:
            await service.record_refused_trigger(
                runtime, job_name, admin, request.url.path, refused.message
            )
            raise
    return await service.trigger(runtime, job_name, admin, request.url.path, dry_run, month)


@router.get(
    "",
    summary="List the batch jobs, their schedules and last executions",
    response_model=list[JobInfo],
    response_model_by_alias=True,
)
async def list_jobs(runtime: RuntimeDep, _admin: AdminDep) -> list[JobInfo]:
    return await service.list_jobs(runtime)


@router.get(
    "/stats",
    summary="Statistics over every recorded execution",
    response_model=GlobalStats,
    response_model_by_alias=True,
)
async def stats(runtime: RuntimeDep, _admin: AdminDep) -> GlobalStats:
    return await service.global_stats(runtime)


@router.get(
    "/executions/{executionId}",
    summary="One execution, with its steps' counters, progress and failure detail",
    response_model=JobExecutionDetailDTO,
    response_model_by_alias=True,
    responses={404: {"description": "No such execution"}},
)
async def execution(
    runtime: RuntimeDep,
    _admin: AdminDep,
    execution_id: ExecutionId,
) -> JobExecutionDetailDTO:
    return await service.execution_detail(runtime, execution_id)


@router.post(
    "/executions/{executionId}/restart",
    summary="Restart a FAILED or STOPPED execution from its last committed chunk",
    response_model=JobRestartResponse,
    response_model_by_alias=True,
    responses={
        404: {"description": "No such execution"},
        409: {"description": "Running, completed, abandoned or not the latest of its instance"},
    },
)
async def restart(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobRestartResponse:
    return await service.restart_execution(runtime, execution_id, admin, request.url.path)


@router.post(
    "/executions/{executionId}/abandon",
    summary="Abandon a FAILED or STOPPED execution: it will never be restarted",
    response_model=JobAbandonResponse,
    response_model_by_alias=True,
    responses={
        404: {"description": "No such execution"},
        409: {"description": "Running or completed"},
    },
)
async def abandon(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobAbandonResponse:
    return await service.abandon_execution(runtime, execution_id, admin, request.url.path)


@router.post(
    "/executions/{executionId}/stop",
    summary="Stop a running execution after its current chunk",
    response_model=JobStopResponse,
    response_model_by_alias=True,
    responses={
        400: {"description": "The execution is not running"},
        404: {"description": "No such execution"},
    },
)
async def stop(
    request: Request,
    runtime: RuntimeDep,
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobStopResponse:
    return await service.stop_execution(runtime, execution_id, admin, request.url.path)


@router.get(
    "/{jobName}/executions",
    summary="A job's executions, newest first (header X-Total-Count: all of them)",
    response_model=list[JobExecutionDTO],
    response_model_by_alias=True,
    responses={404: {"description": "Unknown job"}},
)
async def executions(
    runtime: RuntimeDep,
    response: Response,
    _admin: AdminDep,
    job_name: Annotated[str, Path(alias="jobName", max_length=100)],
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page")] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
) -> list[JobExecutionDTO]:
    found = await service.execution_page(runtime, job_name, page, size)
    response.headers["X-Total-Count"] = str(await service.execution_total(runtime, job_name))
    return found
