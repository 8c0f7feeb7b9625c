"""JobLauncher: run, start, stop, restart and abandon executions of registered jobs.

``start`` returns as soon as the execution exists in batchdb (STARTING, job lock held) and
runs it in a task; ``run`` also waits for the end. Both raise before anything runs when the
job is already running anywhere (:class:`JobExecutionAlreadyRunningError`) or its instance
is complete (:class:`JobInstanceAlreadyCompleteError`). ``stop`` is cooperative: the
execution ends STOPPED after its current chunk, in whichever process runs it. ``close``
asks every execution of this launcher to stop and waits ``shutdown_grace_seconds``.

``recover`` is crash recovery (call it at start; the scheduler calls it every tick, and
``start``/``restart`` before they claim a lock): executions whose process died are marked
FAILED (``CRASHED``) and their ``after_job`` listeners run here, so history, audit,
failure notices and metrics see a crashed execution like any failed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from tranche.batch.control import ExecutionControl
from tranche.batch.errors import (
    JobExecutionAlreadyRunningError,
    JobRestartError,
    NoSuchJobError,
)
from tranche.batch.job import Job
from tranche.batch.listeners import BatchListener, ListenerChain
from tranche.batch.model import (
    BatchStatus,
    JobExecution,
    JobParameter,
    JobParameters,
    ParameterValue,
)
from tranche.batch.operations import Recovered
from tranche.batch.repository import JobRepository
from tranche.batch.runner import JobRunner
from tranche.batch.settings import BatchSettings
from tranche.core.logging import get_logger

__all__ = ["JobLauncher", "Parameters"]

log = get_logger(__name__)

Parameters = JobParameters | Mapping[str, ParameterValue | JobParameter] | None


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead_locally(owner: str) -> bool:
    """True when ``owner`` (``host:pid:tag``) names another process of this host that is gone.

    Lets a replica restarted on the same host recover its predecessor's executions at once
    instead of after the stale threshold. Only a definite "no such process" counts: another
    host, our own pid (a container restarted as pid 1 again) or any doubt wait for staleness.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class JobLauncher:
    def __init__(
        self,
        repository: JobRepository,
        jobs: Iterable[Job] = (),
        *,
        settings: BatchSettings | None = None,
        listeners: Sequence[BatchListener] = (),
        owner: str | None = None,
    ) -> None:
        self.repository = repository
        self.settings = settings or BatchSettings()
        self.owner = (owner or default_owner())[:200]
        self._jobs: dict[str, Job] = {}
        for job in jobs:
            self.register(job)
        self._runner = JobRunner(
            repository,
            heartbeat_interval=self.settings.lock_heartbeat_seconds,
            listeners=listeners,
        )
        self._running: dict[int, tuple[asyncio.Task[JobExecution], ExecutionControl]] = {}

    # ----------------------------------------------------------------- registry

    def register(self, job: Job) -> None:
        if job.name in self._jobs and self._jobs[job.name] is not job:
            raise ValueError(f"a different job named '{job.name}' is already registered")
        self._jobs[job.name] = job

    def job(self, name: str) -> Job:
        try:
            return self._jobs[name]
        except KeyError:
            raise NoSuchJobError(name, list(self._jobs)) from None

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def _resolve(self, job: Job | str) -> Job:
        if isinstance(job, str):
            return self.job(job)
        self.register(job)
        return job

    # ----------------------------------------------------------------- launching

    async def run(self, job: Job | str, parameters: Parameters = None) -> JobExecution:
        """Start ``job`` and wait for its end; the returned execution holds its exceptions."""
        return await self.wait(await self.start(job, parameters))

    async def start(
        self,
        job: Job | str,
        parameters: Parameters = None,
        *,
        next_instance: bool = False,
        occurrence: datetime | None = None,
    ) -> int:
        """Create the execution (job lock claimed) and run it in the background; its id.

        ``next_instance`` adds ``run.id`` (highest so far + 1), Spring's
        ``startNextInstance``: a new instance even with parameters that already completed.
        ``occurrence`` (schedulers) also claims the fire lock of that scheduled time.
        """
        definition = self._resolve(job)
        params = parameters if isinstance(parameters, JobParameters) else JobParameters(parameters)
        await self._recover_quietly()
        execution = await self.repository.create_job_execution(
            definition.name,
            params,
            owner=self.owner,
            stale_after=self.settings.stale_after,
            restartable=definition.restartable,
            next_instance=next_instance,
            occurrence=occurrence,
        )
        return self._spawn(definition, execution)

    async def restart(self, execution_id: int) -> int:
        """Restart a FAILED or STOPPED execution as a new execution of the same instance."""
        await self._recover_quietly()
        previous = await self.repository.require_job_execution(execution_id)
        if not previous.status.is_restartable:
            hint = (
                "; stop it first (stopping an execution whose process died ends it at once)"
                if previous.status.is_running
                else ""
            )
            raise JobRestartError(
                f"job execution {execution_id} is {previous.status.value}: only FAILED or "
                f"STOPPED executions can be restarted{hint}"
            )
        definition = self.job(previous.job_name)
        execution = await self.repository.create_job_execution(
            definition.name,
            previous.parameters,
            owner=self.owner,
            stale_after=self.settings.stale_after,
            restartable=definition.restartable,
            restart_of=previous.id,
        )
        return self._spawn(definition, execution)

    def _spawn(self, job: Job, execution: JobExecution) -> int:
        control = ExecutionControl(self.repository, execution)
        task = asyncio.create_task(
            self._runner.run(job, execution, control), name=f"batch:{job.name}:{execution.id}"
        )
        self._running[execution.id] = (task, control)

        def done(finished: asyncio.Task[JobExecution]) -> None:
            self._running.pop(execution.id, None)
            if not finished.cancelled() and finished.exception() is not None:
                log.error(
                    "batch.job.crashed",
                    job=job.name,
                    execution=execution.id,
                    exc_info=finished.exception(),
                )

        task.add_done_callback(done)
        return execution.id

    async def wait(self, execution_id: int) -> JobExecution:
        """The execution once it has ended (or as stored, if another process runs it)."""
        entry = self._running.get(execution_id)
        if entry is not None:
            return await asyncio.shield(entry[0])
        return await self.repository.require_job_execution(execution_id)

    # ----------------------------------------------------------------- crash recovery

    async def recover(self) -> list[JobExecution]:
        """Mark FAILED the executions whose process died, and run their ``after_job`` listeners.

        Returns the executions this call recovered (another replica recovering at the same
        time gets the others: each is reported exactly once).
        """
        found: list[Recovered] = await self.repository.fail_dead_executions(
            self.settings.stale_after, owner_is_dead_locally
        )
        out = []
        for item in found:
            execution = await self.repository.require_job_execution(item.execution_id)
            log.error(
                "batch.job.crash_recovered",
                job=item.job_name,
                execution=item.execution_id,
                reason=item.reason,
            )
            job = self._jobs.get(item.job_name)
            chain = ListenerChain([*self._runner.listeners, *(job.listeners if job else ())])
            await chain.after_job(execution)
            out.append(execution)
        return out

    async def _recover_quietly(self) -> None:
        try:
            await self.recover()
        except Exception:
            # Recovery must never be why a launch fails; the takeover path still applies.
            log.warning("batch.recovery.failed", exc_info=True)

    # ----------------------------------------------------------------- operator actions

    async def stop(self, execution_id: int) -> BatchStatus:
        """Ask a running execution to stop after its current chunk; STOPPING (or STOPPED)."""
        entry = self._running.get(execution_id)
        if entry is not None:
            entry[1].request_stop()
        return await self.repository.request_stop(execution_id, self.settings.stale_after)

    async def abandon(self, execution_id: int) -> JobExecution:
        """Mark a STOPPED or FAILED execution ABANDONED: it will never be restarted."""
        await self._recover_quietly()  # a dead "running" one first ends FAILED, with its record
        if execution_id in self._running:
            execution = self._running[execution_id][1].execution
            raise JobExecutionAlreadyRunningError(execution.job_name, execution_id)
        await self.repository.abandon(execution_id, self.settings.stale_after)
        return await self.repository.require_job_execution(execution_id)

    def running_execution_ids(self) -> list[int]:
        """Executions started by this launcher that have not ended yet."""
        return sorted(self._running)

    async def close(self) -> None:
        """Stop this launcher's executions (after their chunk); cancel those still running."""
        entries = list(self._running.items())
        for execution_id, (_task, control) in entries:
            control.request_stop()
            log.info("batch.shutdown.stopping", execution=execution_id)
        tasks = [task for _id, (task, _c) in entries]
        if not tasks:
            return
        _done, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
