"""Runs one job execution: its steps in order, listeners around them, statuses persisted.

On a restart, steps whose latest execution in this job instance COMPLETED are skipped and
an unfinished step starts from its previous step context (a chunk step's reader position).
A step guarded by ``when`` whose condition is false is recorded COMPLETED with exit code
NOOP. The job ends COMPLETED, FAILED or STOPPED; the final update and the job-lock release
are one transaction.

A failure's exit message is one line for people (``Type: message``, first line, whole
words); the traceback is stored apart, in the job context under :data:`FAILURE_DETAIL`
(for admins and logs), so it never ends up cut mid-line in a mail.
"""

from __future__ import annotations

import asyncio
import errno
import traceback
from collections.abc import Sequence
from functools import partial

from sqlalchemy.exc import DBAPIError

from tranche.batch.chunk import ChunkExecutor
from tranche.batch.context import ExecutionContext
from tranche.batch.control import ExecutionControl
from tranche.batch.errors import JobInterruptedError, LockLostError, SkipLimitExceededError
from tranche.batch.job import ChunkStep, Job, Step
from tranche.batch.listeners import BatchListener, ListenerChain
from tranche.batch.model import BatchStatus, ExitStatus, JobExecution, StepExecution
from tranche.batch.repository import JobRepository
from tranche.batch.tasklet import TaskletExecutor
from tranche.batch.transient import is_transient_db_error, persist
from tranche.batch.uow import StepContext
from tranche.core.logging import get_logger

__all__ = ["FAILURE_DETAIL", "JobRunner", "describe_failure", "failure_detail", "what_to_do"]

log = get_logger(__name__)

INTERRUPTED = "interrupted: the process shut down while the job ran; restart it"
#: Job-context key of the last failure's traceback (the exit message stays one line).
FAILURE_DETAIL = "batch.failure.detail"
_ONE_LINE = 300
_DETAIL_MAX = 20_000
#: Errors of a write that found no room: the operator frees space, no retry helps.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})


def _cause(exc: BaseException) -> str:
    """The error's own words, without SQLAlchemy's statement, parameters and help link."""
    if isinstance(exc, BaseExceptionGroup):
        # "unhandled errors in a TaskGroup" says nothing: the first error inside does.
        return _cause(exc.exceptions[0])
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        inner = exc.orig
        text = " ".join(str(inner).split())
        return f"{type(exc).__name__} ({type(inner).__name__}): {text}"
    if isinstance(exc, SkipLimitExceededError) and exc.__cause__ is not None:
        return f"{exc.args[0].split(':', 1)[0]}: {_cause(exc.__cause__)}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def what_to_do(exc: BaseException) -> str:
    """One sentence for the operator, from the kind of failure."""
    if isinstance(exc, BaseExceptionGroup) and not is_transient_db_error(exc):
        return what_to_do(exc.exceptions[0])
    if isinstance(exc, SkipLimitExceededError):
        return (
            "too many items were refused: look at the skipped items in the logs, correct "
            "the data, then restart the execution"
        )
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return (
            "the disk is full or a file size limit was reached: free space (or raise the "
            "limit), then restart the execution"
        )
    if is_transient_db_error(exc) or isinstance(exc, OSError | TimeoutError):
        return (
            "a database or server was unreachable or busy: check that it is up and "
            "reachable, then restart the execution"
        )
    if isinstance(exc, DBAPIError):
        return (
            "a database refused the job's statement: check its schema and data against "
            "the owner's, then restart the execution"
        )
    if isinstance(exc, LockLostError):
        return "another process took the job over; check the replicas' clocks and heartbeats"
    return "see the failure detail for the traceback, fix the cause, then restart the execution"


def describe_failure(exc: BaseException) -> str:
    """One line for people: ``Type: message — what to do``, cut at a word."""
    cause = _cause(exc)
    if len(cause) > _ONE_LINE:
        cause = cause[: _ONE_LINE - 1].rsplit(" ", 1)[0] + "…"
    return f"{cause} — {what_to_do(exc)}"


def failure_detail(exc: BaseException) -> str:
    """The traceback, whole lines only, at most 20 000 characters (the end kept: the cause)."""
    text = "".join(traceback.format_exception(exc))
    if len(text) <= _DETAIL_MAX:
        return text
    lines, kept, size = text.splitlines(keepends=True), [], 0
    for line in reversed(lines):
        if size + len(line) > _DETAIL_MAX - 40:
            break
        kept.append(line)
        size += len(line)
    return "[… traceback shortened …]\n" + "".join(reversed(kept))


class JobRunner:
    def __init__(
        self,
        repository: JobRepository,
        *,
        heartbeat_interval: float,
        listeners: Sequence[BatchListener] = (),
    ) -> None:
        self.repository = repository
        self.heartbeat_interval = heartbeat_interval
        self.listeners = list(listeners)

    async def run(
        self, job: Job, execution: JobExecution, control: ExecutionControl
    ) -> JobExecution:
        listeners = ListenerChain([*self.listeners, *job.listeners])
        clock = self.repository.clock
        cancelled: asyncio.CancelledError | None = None
        async with control.heartbeating(self.heartbeat_interval):
            try:
                started = await persist(
                    lambda: self.repository.mark_started(execution), "mark_started"
                )
                if started is BatchStatus.STOPPING:
                    self._end(execution, BatchStatus.STOPPED, ExitStatus.STOPPED)
                else:
                    log.info("batch.job.started", job=job.name, execution=execution.id)
                    await listeners.before_job(execution)
                    await self._steps(job, execution, control, listeners)
            except asyncio.CancelledError as exc:
                cancelled = exc
                self._end(execution, BatchStatus.FAILED, ExitStatus.FAILED, INTERRUPTED)
            except Exception as exc:
                execution.failure_exceptions.append(exc)
                execution.context[FAILURE_DETAIL] = failure_detail(exc)
                self._end(execution, BatchStatus.FAILED, ExitStatus.FAILED, describe_failure(exc))
            execution.end_time = clock()
            await listeners.after_job(execution)
            await persist(lambda: self.repository.finish(execution), "finish")
        log.info(
            "batch.job.finished",
            job=job.name,
            execution=execution.id,
            status=execution.status.value,
            exit_code=execution.exit_status.exit_code,
            seconds=d.total_seconds() if (d := execution.duration) is not None else None,
        )
        if cancelled is not None:
            raise cancelled
        return execution

    async def _save_step(self, execution: JobExecution, step_execution: StepExecution) -> None:
        async with self.repository.engine.begin() as conn:
            await self.repository.update_step_execution(conn, step_execution)
            await self.repository.save_job_context(conn, execution)

    @staticmethod
    def _end(
        execution: JobExecution, status: BatchStatus, exit_status: ExitStatus, message: str = ""
    ) -> None:
        execution.status = status
        execution.exit_status = exit_status.with_description(message) if message else exit_status

    async def _steps(
        self, job: Job, execution: JobExecution, control: ExecutionControl, listeners: ListenerChain
    ) -> None:
        for step in job.steps:
            if control.stop_requested() or await persist(control.refresh_stop_flag, "stop_flag"):
                self._end(execution, BatchStatus.STOPPED, ExitStatus.STOPPED)
                return
            if control.lock_lost:
                raise LockLostError(f"execution {execution.id} lost its job lock")
            previous = await persist(
                partial(self.repository.last_step_execution, execution.instance.id, step.name),
                "last_step_execution",
            )
            if (
                previous is not None
                and previous.status is BatchStatus.COMPLETED
                and not step.allow_start_if_complete
            ):
                log.info("batch.step.already_complete", job=job.name, step=step.name)
                continue
            resumes = previous is not None and previous.status is not BatchStatus.COMPLETED
            context = previous.context.copy() if previous and resumes else ExecutionContext()
            step_execution = await persist(
                partial(self.repository.create_step_execution, execution, step.name, context),
                "create_step_execution",
            )
            await self._step(step, execution, step_execution, control, listeners + step.listeners)
            if step_execution.status is BatchStatus.STOPPED:
                self._end(execution, BatchStatus.STOPPED, ExitStatus.STOPPED)
                return
            if step_execution.status is BatchStatus.FAILED:
                message = (
                    f"step '{step.name}' failed: {step_execution.exit_status.exit_description}"
                )
                self._end(execution, BatchStatus.FAILED, ExitStatus.FAILED, message)
                return
        self._end(execution, BatchStatus.COMPLETED, ExitStatus.COMPLETED)

    async def _step(
        self,
        step: Step,
        execution: JobExecution,
        step_execution: StepExecution,
        control: ExecutionControl,
        listeners: ListenerChain,
    ) -> None:
        ctx = StepContext(execution, step_execution, control.stop_requested)
        cancelled: asyncio.CancelledError | None = None
        if step.when is not None and not step.when(execution.context):
            step_execution.status = BatchStatus.COMPLETED
            step_execution.exit_status = ExitStatus.NOOP.with_description("condition not met")
        else:
            try:
                await listeners.before_step(step_execution)
                executor = (
                    ChunkExecutor(step, ctx, control, listeners)
                    if isinstance(step, ChunkStep)
                    else TaskletExecutor(step, ctx, control, listeners)
                )
                await executor.execute()
                step_execution.status = BatchStatus.COMPLETED
                step_execution.exit_status = ExitStatus.COMPLETED
            except JobInterruptedError:
                step_execution.status = BatchStatus.STOPPED
                step_execution.exit_status = ExitStatus.STOPPED
            except asyncio.CancelledError as exc:
                cancelled = exc
                step_execution.status = BatchStatus.FAILED
                step_execution.exit_status = ExitStatus.FAILED.with_description(INTERRUPTED)
            except Exception as exc:
                # The traceback goes to the step's exit message; the log line stays one line.
                log.warning(
                    "batch.step.failed",
                    step=step.name,
                    execution=execution.id,
                    error=f"{type(exc).__name__}: {exc}",
                )
                step_execution.failure_exceptions.append(exc)
                execution.context[FAILURE_DETAIL] = failure_detail(exc)
                step_execution.status = BatchStatus.FAILED
                step_execution.exit_status = ExitStatus.FAILED.with_description(
                    describe_failure(exc)
                )
        step_execution.end_time = self.repository.clock()
        await listeners.after_step(step_execution)
        await persist(lambda: self._save_step(execution, step_execution), "end_step")
        if cancelled is not None:
            raise cancelled
