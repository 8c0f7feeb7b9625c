"""The admin API's JSON bodies, with the original's field names (reference §8).

Times are UTC, written as the original's ``LocalDateTime`` was
(``2024-01-15T02:00:00``, no offset). ``executionId`` is always the batch
engine's job execution id: the one ``run`` returns, ``executions/{id}`` reads
and ``stop`` stops.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

__all__ = [
    "GlobalStats",
    "JobAbandonResponse",
    "JobExecutionDTO",
    "JobExecutionDetailDTO",
    "JobFailure",
    "JobInfo",
    "JobRestartResponse",
    "JobStopResponse",
    "JobTriggerResponse",
    "ProgressDTO",
    "ReportDeliveryDTO",
    "ReportInfoDTO",
    "StepExecutionDTO",
    "format_duration",
    "local_utc",
]


def local_utc(value: datetime) -> str:
    """``2024-01-15T02:00:00``: UTC, seconds, no offset (the original's LocalDateTime)."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


#: Documented as what it is, not ``format: date-time``: RFC 3339 date-times carry an
#: offset, and a generated client validating that format would refuse every answer.
UtcTime = Annotated[
    datetime,
    PlainSerializer(local_utc, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
            "description": "UTC, to the second, without an offset (the original's LocalDateTime)",
            "example": "2024-01-15T02:00:00",
        }
    ),
]


def format_duration(value: timedelta | None) -> str:
    """``"5m 23s"``, or ``"N/A"`` while unknown (the original's format)."""
    if value is None:
        return "N/A"
    seconds = max(0, int(value.total_seconds()))
    return f"{seconds // 60}m {seconds % 60}s"


class _Dto(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class JobTriggerResponse(_Dto):
    execution_id: int = Field(alias="executionId")
    job_name: str = Field(alias="jobName")
    status: str
    start_time: UtcTime = Field(alias="startTime")
    message: str


class JobInfo(_Dto):
    name: str
    description: str
    cron_expression: str = Field(alias="cronExpression")
    next_fire_time: UtcTime | None = Field(alias="nextFireTime")
    last_execution: UtcTime | None = Field(alias="lastExecution")
    last_status: str | None = Field(alias="lastStatus")
    is_running: bool = Field(alias="isRunning")


class ReportDeliveryDTO(_Dto):
    """One recipient of a monthly report and what happened to their mail."""

    recipient: str
    status: str = Field(description="SENT, FAILED or SKIPPED (no SMTP host configured)")
    attempts: int
    last_error: str | None = Field(alias="lastError")
    sent_at: UtcTime | None = Field(alias="sentAt")


class JobExecutionDTO(_Dto):
    execution_id: int = Field(alias="executionId")
    job_name: str = Field(alias="jobName")
    status: str
    start_time: UtcTime | None = Field(alias="startTime")
    end_time: UtcTime | None = Field(alias="endTime")
    duration: str
    items_processed: int = Field(alias="itemsProcessed")
    items_failed: int = Field(alias="itemsFailed")
    exit_code: str = Field(alias="exitCode")
    exit_message: str | None = Field(alias="exitMessage")
    counts: dict[str, int] = Field(description="What the job did: deleted tokens, alerts by type…")
    triggered_by: str | None = Field(alias="triggeredBy")
    report_deliveries: list[ReportDeliveryDTO] | None = Field(
        default=None,
        alias="reportDeliveries",
        description="monthlyReportJob only: the report's mail, recipient by recipient",
    )


class JobStopResponse(_Dto):
    execution_id: int = Field(alias="executionId")
    status: str
    message: str


class JobFailure(_Dto):
    job_name: str = Field(alias="jobName")
    execution_id: int = Field(alias="executionId")
    failure_time: UtcTime = Field(alias="failureTime")
    exit_message: str | None = Field(alias="exitMessage")


class GlobalStats(_Dto):
    total_executions: int = Field(alias="totalExecutions")
    successful_executions: int = Field(alias="successfulExecutions")
    failed_executions: int = Field(alias="failedExecutions")
    success_rate: float = Field(alias="successRate", ge=0, le=100)
    average_duration: str = Field(alias="averageDuration")
    last_failure: JobFailure | None = Field(alias="lastFailure")


class StepExecutionDTO(_Dto):
    """One step of an execution with Spring Batch's counters (committed chunks only)."""

    step_name: str = Field(alias="stepName")
    status: str
    read_count: int = Field(alias="readCount")
    write_count: int = Field(alias="writeCount")
    filter_count: int = Field(alias="filterCount")
    read_skip_count: int = Field(alias="readSkipCount")
    process_skip_count: int = Field(alias="processSkipCount")
    write_skip_count: int = Field(alias="writeSkipCount")
    skip_count: int = Field(alias="skipCount")
    commit_count: int = Field(alias="commitCount")
    rollback_count: int = Field(alias="rollbackCount")
    start_time: UtcTime | None = Field(alias="startTime")
    end_time: UtcTime | None = Field(alias="endTime")
    exit_code: str = Field(alias="exitCode")
    exit_message: str | None = Field(alias="exitMessage")


class ProgressDTO(_Dto):
    """Items handled so far against the reader's estimate taken when the run started."""

    total: int = Field(description="Items the readers expected at the start (an estimate)")
    done: int = Field(description="Items read or skipped in committed chunks")
    percent: float = Field(ge=0, le=100)


class JobExecutionDetailDTO(JobExecutionDTO):
    steps: list[StepExecutionDTO]
    progress: ProgressDTO | None = Field(
        description="Null when the job's reader cannot estimate its total"
    )
    failure_detail: str | None = Field(
        alias="failureDetail",
        description="The stored traceback of a failed execution (admins only; never mailed)",
    )


class JobRestartResponse(_Dto):
    execution_id: int = Field(alias="executionId", description="The new execution")
    restart_of: int = Field(alias="restartOf", description="The execution restarted")
    job_name: str = Field(alias="jobName")
    status: str
    message: str


class JobAbandonResponse(_Dto):
    execution_id: int = Field(alias="executionId")
    status: str
    message: str


class ReportInfoDTO(_Dto):
    """A report file in the reports directory (the original's ReportInfoDTO)."""

    file_name: str = Field(alias="fileName", examples=["rapport_2025_02.pdf"])
    generated_date: UtcTime = Field(alias="generatedDate")
    file_size_bytes: int = Field(alias="fileSizeBytes")
    download_url: str = Field(alias="downloadUrl")
