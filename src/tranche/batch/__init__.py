"""A small job engine with Spring Batch's semantics, persisted in batchdb.

Jobs of chunk steps (reader → processor → writer, committed every ``chunk_size`` items with
the reader position) and tasklet steps; a repository of instances, executions and step
executions; a launcher that runs, stops, restarts and abandons them, with one running
execution per job across processes; listeners and Prometheus metrics; Quartz cron schedules
fired once per occurrence across replicas. See docs/batch-engine.md.
"""

from tranche.batch.context import ExecutionContext
from tranche.batch.cron import CronExpression, next_fire_time
from tranche.batch.errors import (
    BatchError,
    CronSyntaxError,
    JobExecutionAlreadyRunningError,
    JobExecutionNotRunningError,
    JobInstanceAlreadyCompleteError,
    JobInterruptedError,
    JobParametersInvalidError,
    JobRestartError,
    LockLostError,
    NoSuchJobError,
    NoSuchJobExecutionError,
    ScheduleError,
    SkipLimitExceededError,
)
from tranche.batch.job import (
    ChunkStep,
    Condition,
    ItemProcessor,
    ItemWriter,
    Job,
    RepeatStatus,
    RetryPolicy,
    SkipPolicy,
    Step,
    Tasklet,
    TaskletStep,
)
from tranche.batch.launcher import JobLauncher, Parameters
from tranche.batch.listeners import BatchListener
from tranche.batch.metrics import JobMetrics
from tranche.batch.model import (
    BatchStatus,
    Clock,
    ExitStatus,
    JobExecution,
    JobInstance,
    JobParameter,
    JobParameters,
    StepExecution,
    utc_now,
)
from tranche.batch.readers import ItemReader, KeysetReader, ListReader
from tranche.batch.repository import JobRepository, OccurrenceAlreadyFiredError
from tranche.batch.runner import FAILURE_DETAIL
from tranche.batch.scheduler import FIRE_TIME, Firing, JobScheduler, Schedule
from tranche.batch.settings import BatchSettings
from tranche.batch.tables import (
    add_batch_tables,
    create_batch_tables,
    drop_batch_tables,
    metadata,
)
from tranche.batch.uow import StepContext

__all__ = [
    "FAILURE_DETAIL",
    "FIRE_TIME",
    "BatchError",
    "BatchListener",
    "BatchSettings",
    "BatchStatus",
    "ChunkStep",
    "Clock",
    "Condition",
    "CronExpression",
    "CronSyntaxError",
    "ExecutionContext",
    "ExitStatus",
    "Firing",
    "ItemProcessor",
    "ItemReader",
    "ItemWriter",
    "Job",
    "JobExecution",
    "JobExecutionAlreadyRunningError",
    "JobExecutionNotRunningError",
    "JobInstance",
    "JobInstanceAlreadyCompleteError",
    "JobInterruptedError",
    "JobLauncher",
    "JobMetrics",
    "JobParameter",
    "JobParameters",
    "JobParametersInvalidError",
    "JobRepository",
    "JobRestartError",
    "JobScheduler",
    "KeysetReader",
    "ListReader",
    "LockLostError",
    "NoSuchJobError",
    "NoSuchJobExecutionError",
    "OccurrenceAlreadyFiredError",
    "Parameters",
    "RepeatStatus",
    "RetryPolicy",
    "Schedule",
    "ScheduleError",
    "SkipLimitExceededError",
    "SkipPolicy",
    "Step",
    "StepContext",
    "StepExecution",
    "Tasklet",
    "TaskletStep",
    "add_batch_tables",
    "create_batch_tables",
    "drop_batch_tables",
    "metadata",
    "next_fire_time",
    "utc_now",
]
