"""``/api/batch/jobs``: the admin API of the original batch-service (reference §8).

Every route needs a user-service token with ROLE_ADMIN (``AdminDep``); the
trigger is also rate-limited per admin. Paths and field names are the
original's; where it answered an empty 500 these answer JSON errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from tranche.core.errors import ApiError
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

__all__ = ["router"]

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


@router.post(
    "/{jobName}/run",
    summary="Trigger a batch job manually",
    response_model=JobTriggerResponse,
    response_model_by_alias=True,
    responses={
        400: {"description": "dryRun asked of a job that has no dry run"},
        404: {"description": "Unknown job"},
        409: {"description": "The job is already running"},
        429: {"description": "Too many triggers by this admin (see Retry-After)"},
    },
)
async def run_job(
    request: Request,
    admin: AdminDep,
    job_name: Annotated[str, Path(alias="jobName", max_length=100, examples=["tokenCleanupJob"])],
    dry_run: Annotated[
        bool,
        Query(alias="dryRun", description="Find and report only, change nothing (jobs that can)"),
    ] = False,
) -> JobTriggerResponse:
    runtime = _runtime(request)
    if job_name in runtime.specs:
        limiter: TriggerLimiter = request.app.state.trigger_limiter
        try:
            await limiter.hit(admin.email)
        except ApiError as refused:
            await service.record_refused_trigger(
                runtime, job_name, admin, request.url.path, refused.message
            )
            raise
    return await service.trigger(runtime, job_name, admin, request.url.path, dry_run)


@router.get(
    "",
    summary="List the batch jobs, their schedules and last executions",
    response_model=list[JobInfo],
    response_model_by_alias=True,
)
async def list_jobs(request: Request, _admin: AdminDep) -> list[JobInfo]:
    return await service.list_jobs(_runtime(request))


@router.get(
    "/stats",
    summary="Statistics over every recorded execution",
    response_model=GlobalStats,
    response_model_by_alias=True,
)
async def stats(request: Request, _admin: AdminDep) -> GlobalStats:
    return await service.global_stats(_runtime(request))


@router.get(
    "/executions/{executionId}",
    summary="One execution, with its steps' counters, progress and failure detail",
    response_model=JobExecutionDetailDTO,
    response_model_by_alias=True,
    responses={404: {"description": "No such execution"}},
)
async def execution(
    request: Request,
    _admin: AdminDep,
    execution_id: ExecutionId,
) -> JobExecutionDetailDTO:
    return await service.execution_detail(_runtime(request), execution_id)


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
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobRestartResponse:
    return await service.restart_execution(_runtime(request), execution_id, admin, request.url.path)


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
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobAbandonResponse:
    return await service.abandon_execution(_runtime(request), execution_id, admin, request.url.path)


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
    admin: AdminDep,
    execution_id: ExecutionId,
) -> JobStopResponse:
    return await service.stop_execution(_runtime(request), execution_id, admin, request.url.path)


@router.get(
    "/{jobName}/executions",
    summary="A job's executions, newest first (header X-Total-Count: all of them)",
    response_model=list[JobExecutionDTO],
    response_model_by_alias=True,
    responses={404: {"description": "Unknown job"}},
)
async def executions(
    request: Request,
    response: Response,
    _admin: AdminDep,
    job_name: Annotated[str, Path(alias="jobName", max_length=100)],
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page")] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
) -> list[JobExecutionDTO]:
    runtime = _runtime(request)
    found = await service.execution_page(runtime, job_name, page, size)
    response.headers["X-Total-Count"] = str(await service.execution_total(runtime, job_name))
    return found
