"""Errors of the batch engine, named after Spring Batch's exceptions so operators recognise them."""

from __future__ import annotations

__all__ = [
    "BatchError",
    "CronSyntaxError",
    "JobExecutionAlreadyRunningError",
    "JobExecutionNotRunningError",
    "JobInstanceAlreadyCompleteError",
    "JobInterruptedError",
    "JobParametersInvalidError",
    "JobRestartError",
    "LockLostError",
    "NoSuchJobError",
    "NoSuchJobExecutionError",
    "ScheduleError",
    "SkipLimitExceededError",
]


class BatchError(Exception):
    """Base of every error the engine raises on purpose."""


class NoSuchJobError(BatchError):
    def __init__(self, job_name: str, known: list[str] | None = None) -> None:
        hint = f" (known jobs: {', '.join(sorted(known))})" if known else ""
        super().__init__(f"no job named '{job_name}'{hint}")
        self.job_name = job_name


class NoSuchJobExecutionError(BatchError):
    def __init__(self, execution_id: int) -> None:
        super().__init__(f"no job execution with id {execution_id}")
        self.execution_id = execution_id


class JobParametersInvalidError(BatchError, ValueError):
    """A job parameter has a bad name, type or value; the message names the parameter."""


class JobExecutionAlreadyRunningError(BatchError):
    def __init__(self, job_name: str, execution_id: int | None = None) -> None:
        which = f" (execution {execution_id})" if execution_id is not None else ""
        super().__init__(f"job '{job_name}' is already running{which}")
        self.job_name = job_name
        self.execution_id = execution_id


class JobInstanceAlreadyCompleteError(BatchError):
    def __init__(self, job_name: str, parameters: str, status: str = "COMPLETED") -> None:
        super().__init__(
            f"a job instance of '{job_name}' already exists and is {status} for identifying "
            f"parameters {parameters}; change the parameters (e.g. a new 'run.id') to run it again"
        )
        self.job_name = job_name


class JobRestartError(BatchError):
    """The execution cannot be restarted (wrong status, not the latest, job not restartable)."""


class JobExecutionNotRunningError(BatchError):
    def __init__(self, execution_id: int, status: str) -> None:
        super().__init__(f"job execution {execution_id} is not running (status {status})")
        self.execution_id = execution_id
        self.status = status


class JobInterruptedError(BatchError):
    """A stop was requested; the step ends STOPPED after its current chunk."""


class LockLostError(BatchError):
    """Another process took this job's lock over (it judged this process dead)."""


class SkipLimitExceededError(BatchError):
    def __init__(self, step_name: str, limit: int, cause: BaseException) -> None:
        super().__init__(
            f"step '{step_name}' exceeded its skip limit of {limit}: "
            f"{type(cause).__name__}: {cause}"
        )
        self.limit = limit


class CronSyntaxError(BatchError, ValueError):
    """A Quartz cron expression is malformed; the message names the field and the fault."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__(f"invalid cron expression '{expression}': {problem}")
        self.expression = expression
        self.problem = problem


class ScheduleError(BatchError, ValueError):
    """A schedule cannot be used (unknown job, bad or never-firing cron expression)."""
