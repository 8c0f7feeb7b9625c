"""What the admin API does, as plain functions over the :class:`Runtime` (routes stay thin).

Every engine refusal becomes a domain error, which the HTTP edge answers as clear
JSON: unknown job or execution → :class:`NotFound` (404), a job already running →
:class:`Conflict` (409; the original answered an empty 500), stopping an execution
that is not running → :class:`Refused` (400, as the original). The read-only views
live in :mod:`tranche.doctoral.views` and are re-exported here for the routes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from tranche.batch import (
    BatchStatus,
    JobExecution,
    JobExecutionAlreadyRunningError,
    JobExecutionNotRunningError,
    JobInstanceAlreadyCompleteError,
    JobRestartError,
    NoSuchJobExecutionError,
)
from tranche.batch.model import ParameterValue
from tranche.core.errors import Conflict, InvalidInput, NotFound, Refused
from tranche.doctoral.audit import AuditEvent, AuditEventType
from tranche.doctoral.jobs import monthly_report
from tranche.doctoral.reports.period import Month, MonthSyntaxError
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import (
    JobAbandonResponse,
    JobRestartResponse,
    JobStopResponse,
    JobTriggerResponse,
)
from tranche.doctoral.views import (
    execution_detail,
    execution_page,
    execution_total,
    global_stats,
    known_job,
    list_jobs,
    to_dto,
)

__all__ = [
    "Caller",
    "abandon_execution",
    "execution_detail",
    "execution_page",
    "execution_total",
    "global_stats",
    "list_jobs",
    "record_refused_trigger",
    "restart_execution",
    "stop_execution",
    "to_dto",
    "trigger",
]


class Caller(Protocol):
    """Who asks, as the audit log records them (``auth.Principal`` in the API)."""

    @property
    def email(self) -> str: ...
    @property
    def role_list(self) -> str: ...
    @property
    def ip_address(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...


async def record_refused_trigger(
    runtime: Runtime, job_name: str, who: Caller, path: str, reason: str
) -> None:
    """Audit a trigger refused before it reached the engine (rate limit)."""
    await runtime.audit.record(
        AuditEvent(
            AuditEventType.MANUAL_TRIGGER,
            "RUN",
            "REFUSED",
            job_name=job_name,
            user_id=who.email,
            user_role=who.role_list,
            resource_path=path,
            details=reason,
            ip_address=who.ip_address,
            user_agent=who.user_agent,
        )
    )


async def trigger(
    runtime: Runtime,
    job_name: str,
    who: Caller,
    path: str,
    dry_run: bool = False,
    month: str | None = None,
) -> JobTriggerResponse:
    """Start ``job_name`` now; ``dry_run`` for the jobs that have one, ``month``
    (``YYYY-MM``) for monthlyReportJob's month (default: the previous one)."""
    known_job(runtime, job_name)
    extra: dict[str, ParameterValue] = {}
    if dry_run:
        if not runtime.spec(job_name).supports_dry_run:
            problem = f"job '{job_name}' has no dry run"
            raise InvalidInput("dryRun", problem, f"dryRun: {problem}")
        extra["dryRun"] = True
    if month is not None:
        if job_name != monthly_report.JOB_NAME:
            raise InvalidInput("month", f"only {monthly_report.JOB_NAME} takes a month")
        try:
            extra[monthly_report.MONTH] = str(Month.parse(month))
        except MonthSyntaxError as exc:
            raise InvalidInput("month", str(exc)) from None
    event = AuditEvent(
        AuditEventType.MANUAL_TRIGGER,
        "RUN",
        "ACCEPTED",
        job_name=job_name,
        user_id=who.email,
        user_role=who.role_list,
        resource_path=path,
        ip_address=who.ip_address,
        user_agent=who.user_agent,
    )
    try:
        execution_id = await runtime.start(job_name, who.email, extra=extra or None)
    except JobExecutionAlreadyRunningError as exc:
        await _refused(runtime, event, exc)
        raise Conflict(
            f"Job '{job_name}' is already running"
            + (f" (execution {exc.execution_id})" if exc.execution_id else ""),
            details={"executionId": exc.execution_id},
        ) from None
    await runtime.audit.record(replace(event, execution_id=execution_id))
    execution = await runtime.repository.require_job_execution(execution_id)
    return JobTriggerResponse(
        execution_id=execution_id,
        job_name=job_name,
        status=execution.status.value,
        start_time=execution.start_time or execution.create_time or runtime.clock(),
        message=f"Job '{job_name}' has been triggered successfully",
    )


async def stop_execution(
    runtime: Runtime, execution_id: int, who: Caller, path: str
) -> JobStopResponse:
    event = AuditEvent(
        AuditEventType.JOB_STOP,
        "STOP",
        "ACCEPTED",
        execution_id=execution_id,
        user_id=who.email,
        user_role=who.role_list,
        resource_path=path,
        ip_address=who.ip_address,
        user_agent=who.user_agent,
    )
    try:
        execution = await runtime.repository.require_job_execution(execution_id)
        if execution.job_name not in runtime.specs:
            raise NoSuchJobExecutionError(execution_id)
        status = await runtime.launcher.stop(execution_id)
    except NoSuchJobExecutionError:
        raise NotFound(f"No job execution with id {execution_id}") from None
    except JobExecutionNotRunningError as exc:
        await _refused(runtime, event, exc)
        raise Refused(
            f"Job execution {execution_id} is not running (status {exc.status})"
        ) from None
    await runtime.audit.record(replace(event, job_name=execution.job_name, details=status.value))
    message = (
        f"Job execution {execution_id} has been stopped"
        if status is BatchStatus.STOPPED
        else f"Job execution {execution_id} will stop after its current chunk"
    )
    return JobStopResponse(execution_id=execution_id, status=status.value, message=message)


def _operator_event(
    kind: AuditEventType, action: str, execution_id: int, who: Caller, path: str
) -> AuditEvent:
    return AuditEvent(
        kind,
        action,
        "ACCEPTED",
        execution_id=execution_id,
        user_id=who.email,
        user_role=who.role_list,
        resource_path=path,
        ip_address=who.ip_address,
        user_agent=who.user_agent,
    )


async def _refused(runtime: Runtime, event: AuditEvent, exc: Exception) -> None:
    """Audit an operator request the engine refused, with the engine's reason."""
    await runtime.audit.record(replace(event, status="REFUSED", details=str(exc)))


async def _known_execution(runtime: Runtime, execution_id: int) -> JobExecution:
    execution = await runtime.repository.get_job_execution(execution_id)
    if execution is None or execution.job_name not in runtime.specs:
        raise NotFound(f"No job execution with id {execution_id}")
    return execution


async def restart_execution(
    runtime: Runtime, execution_id: int, who: Caller, path: str
) -> JobRestartResponse:
    """Restart a FAILED or STOPPED execution from its last committed chunk (409 otherwise)."""
    event = _operator_event(AuditEventType.JOB_RESTART, "RESTART", execution_id, who, path)
    execution = await _known_execution(runtime, execution_id)
    event = replace(event, job_name=execution.job_name)
    try:
        new_id = await runtime.launcher.restart(execution_id)
    except JobExecutionAlreadyRunningError as exc:
        await _refused(runtime, event, exc)
        raise Conflict(
            f"Job '{execution.job_name}' is running (execution {exc.execution_id or '?'}): "
            "stop it, or wait for its end, before restarting",
            details={"executionId": exc.execution_id},
        ) from None
    except (JobRestartError, JobInstanceAlreadyCompleteError) as exc:
        await _refused(runtime, event, exc)
        status = await runtime.repository.job_status(execution_id)
        if status.is_running:
            raise Conflict(
                f"Job execution {execution_id} is running ({status.value}): stop it, or wait "
                "for its end, before restarting",
            ) from None
        raise Conflict(f"Job execution {execution_id} cannot be restarted: {exc}") from None
    await runtime.audit.record(replace(event, details=f"restarted as execution {new_id}"))
    started = await runtime.repository.require_job_execution(new_id)
    return JobRestartResponse(
        execution_id=new_id,
        restart_of=execution_id,
        job_name=execution.job_name,
        status=started.status.value,
        message=(
            f"Job execution {execution_id} restarted as execution {new_id}, "
            "from its last committed chunk"
        ),
    )


async def abandon_execution(
    runtime: Runtime, execution_id: int, who: Caller, path: str
) -> JobAbandonResponse:
    """Mark a STOPPED or FAILED execution ABANDONED: it will never be restarted."""
    event = _operator_event(AuditEventType.JOB_ABANDON, "ABANDON", execution_id, who, path)
    execution = await _known_execution(runtime, execution_id)
    event = replace(event, job_name=execution.job_name)
    try:
        abandoned = await runtime.launcher.abandon(execution_id)
    except JobExecutionAlreadyRunningError as exc:
        await _refused(runtime, event, exc)
        raise Conflict(
            f"Job execution {execution_id} is running: stop it first, then abandon it",
        ) from None
    except JobRestartError as exc:
        await _refused(runtime, event, exc)
        raise Conflict(f"Job execution {execution_id} cannot be abandoned: {exc}") from None
    await runtime.audit.record(event)
    return JobAbandonResponse(
        execution_id=execution_id,
        status=abandoned.status.value,
        message=f"Job execution {execution_id} is abandoned and will never be restarted",
    )
