"""``/api/batch/jobs``: the admin API of the original batch-service (reference §8).

Every route needs a user-service token with ROLE_ADMIN (``AdminDep``); the
trigger is also rate-limited per admin. Paths and field names are the
original's; where it answered an empty 500 these answer JSON errors. Routes
take what they need as the ``Annotated`` aliases declared below (``RuntimeDep``,
``LimiterDep``, ``AdminDep``) and call :mod:`tranche.doctoral.service`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from tranche.core.http import from_app_state
from tranche.doctoral import service
from tranche.doctoral.auth import AdminDep, TriggerLimiter
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import (
    GlobalStats,
    JobExecutionDTO,
    JobInfo,
    JobStopResponse,
    JobTriggerResponse,
)

__all__ = ["LimiterDep", "RuntimeDep", "router"]

MAX_PAGE_SIZE = 100

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
) -> JobTriggerResponse:
    if job_name in runtime.specs:
        await limiter.hit(admin.email)
    return await service.trigger(runtime, job_name, admin, request.url.path)


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
    summary="One execution",
    response_model=JobExecutionDTO,
    response_model_by_alias=True,
    responses={404: {"description": "No such execution"}},
)
async def execution(
    runtime: RuntimeDep,
    _admin: AdminDep,
    execution_id: Annotated[int, Path(alias="executionId", ge=1)],
) -> JobExecutionDTO:
    return await service.execution_detail(runtime, execution_id)


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
    execution_id: Annotated[int, Path(alias="executionId", ge=1)],
) -> JobStopResponse:
    return await service.stop_execution(runtime, execution_id, admin, request.url.path)


@router.get(
    "/{jobName}/executions",
    summary="A job's executions, newest first",
    response_model=list[JobExecutionDTO],
    response_model_by_alias=True,
    responses={404: {"description": "Unknown job"}},
)
async def executions(
    runtime: RuntimeDep,
    _admin: AdminDep,
    job_name: Annotated[str, Path(alias="jobName", max_length=100)],
    page: Annotated[int, Query(ge=0, le=1_000_000, description="Zero-based page")] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size")] = 20,
) -> list[JobExecutionDTO]:
    return await service.execution_page(runtime, job_name, page, size)
