"""What the admin API shows: jobs, executions, their detail and the global statistics.

Read-only views over the :class:`Runtime`, split from :mod:`tranche.doctoral.service`
(which changes things: trigger, stop, restart, abandon). An unknown job or execution
is a :class:`NotFound` (404).
"""

from __future__ import annotations

from datetime import timedelta

from tranche.batch import BatchStatus, JobExecution, StepExecution
from tranche.core.errors import NotFound
from tranche.doctoral import history
from tranche.doctoral.jobs import monthly_report
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.listeners import TRIGGERED_BY, estimated_total, failure_traceback
from tranche.doctoral.reports.deliveries import deliveries_of
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import (
    GlobalStats,
    JobExecutionDetailDTO,
    JobExecutionDTO,
    JobFailure,
    JobInfo,
    ProgressDTO,
    ReportDeliveryDTO,
    StepExecutionDTO,
    format_duration,
)

__all__ = [
    "execution_detail",
    "execution_page",
    "execution_total",
    "global_stats",
    "known_job",
    "list_jobs",
    "to_dto",
]


def known_job(runtime: Runtime, job_name: str) -> None:
    if job_name not in runtime.specs:
        known = ", ".join(sorted(runtime.specs))
        raise NotFound(f"Unknown job '{job_name}' (known jobs: {known})")


def to_dto(execution: JobExecution) -> JobExecutionDTO:
    totals = execution.totals()
    triggered = execution.parameters.value(TRIGGERED_BY)
    return JobExecutionDTO(
        execution_id=execution.id,
        job_name=execution.job_name,
        status=execution.status.value,
        start_time=execution.start_time or execution.create_time,
        end_time=execution.end_time,
        duration=format_duration(execution.duration),
        items_processed=totals["read_count"],
        items_failed=totals["read_skip_count"]
        + totals["process_skip_count"]
        + totals["write_skip_count"],
        exit_code=execution.exit_status.exit_code,
        exit_message=execution.exit_status.exit_description or None,
        counts=counts_of(execution),
        triggered_by=None if triggered is None else str(triggered),
    )


async def list_jobs(runtime: Runtime) -> list[JobInfo]:
    scheduled = runtime.settings.batch.scheduler_enabled
    fire_times = runtime.scheduler.next_fire_times() if scheduled else {}
    running = {e.job_name for e in await runtime.repository.find_running_executions()}
    out = []
    for name, spec in runtime.specs.items():
        last = await runtime.repository.last_job_execution(name)
        out.append(
            JobInfo(
                name=name,
                description=spec.description,
                cron_expression=spec.cron,
                next_fire_time=fire_times.get(name),
                last_execution=(last.start_time or last.create_time) if last else None,
                last_status=last.status.value if last else None,
                is_running=name in running,
            )
        )
    return out


async def execution_page(
    runtime: Runtime, job_name: str, page: int, size: int
) -> list[JobExecutionDTO]:
    known_job(runtime, job_name)
    found = await runtime.repository.find_job_executions(job_name, offset=page * size, limit=size)
    return [to_dto(e) for e in found]


async def global_stats(runtime: Runtime) -> GlobalStats:
    s = await history.summary(runtime.sources.batchdb)
    rate = round(100.0 * s.completed / s.total, 2) if s.total else 0.0
    average = None if s.average_seconds is None else timedelta(seconds=s.average_seconds)
    failure = s.last_failure
    return GlobalStats(
        total_executions=s.total,
        successful_executions=s.completed,
        failed_executions=s.failed,
        success_rate=rate,
        average_duration=format_duration(average),
        last_failure=None
        if failure is None
        else JobFailure(
            job_name=failure.job_name,
            execution_id=failure.job_execution_id,
            failure_time=failure.end_time or failure.start_time,
            exit_message=failure.exit_message,
        ),
    )


def _step_dto(step: StepExecution) -> StepExecutionDTO:
    return StepExecutionDTO(
        step_name=step.step_name,
        status=step.status.value,
        read_count=step.read_count,
        write_count=step.write_count,
        filter_count=step.filter_count,
        read_skip_count=step.read_skip_count,
        process_skip_count=step.process_skip_count,
        write_skip_count=step.write_skip_count,
        skip_count=step.skip_count,
        commit_count=step.commit_count,
        rollback_count=step.rollback_count,
        start_time=step.start_time,
        end_time=step.end_time,
        exit_code=step.exit_status.exit_code,
        exit_message=step.exit_status.exit_description or None,
    )


def _progress(execution: JobExecution) -> ProgressDTO | None:
    total = estimated_total(execution)
    if total is None:
        return None
    totals = execution.totals()
    done = totals["read_count"] + totals["read_skip_count"]
    if execution.status is BatchStatus.COMPLETED:
        percent = 100.0
    elif total <= 0:
        percent = 0.0
    else:
        percent = round(min(100.0, 100.0 * done / total), 1)
    return ProgressDTO(total=max(total, 0), done=done, percent=percent)


async def _report_deliveries(
    runtime: Runtime, execution: JobExecution
) -> list[ReportDeliveryDTO] | None:
    month = execution.context.get(monthly_report.MONTH_KEY)
    if execution.job_name != monthly_report.JOB_NAME or not isinstance(month, str):
        return None
    return [
        ReportDeliveryDTO(
            recipient=d.recipient,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            sent_at=d.sent_at,
        )
        for d in await deliveries_of(runtime.sources.batchdb, month)
    ]


async def execution_detail(runtime: Runtime, execution_id: int) -> JobExecutionDetailDTO:
    """One execution with its steps' counters, progress, stored failure detail and,
    for the monthly report, the mail recipient by recipient."""
    execution = await runtime.repository.get_job_execution(execution_id)
    if execution is None or execution.job_name not in runtime.specs:
        raise NotFound(f"No job execution with id {execution_id}")
    dto = to_dto(execution)
    dto.report_deliveries = await _report_deliveries(runtime, execution)
    return JobExecutionDetailDTO(
        **dto.model_dump(),
        steps=[_step_dto(s) for s in execution.step_executions],
        progress=_progress(execution),
        failure_detail=failure_traceback(execution),
    )


async def execution_total(runtime: Runtime, job_name: str) -> int:
    known_job(runtime, job_name)
    return await runtime.repository.count_job_executions(job_name)
