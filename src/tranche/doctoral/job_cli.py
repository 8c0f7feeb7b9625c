"""``tranche job run|list|stop|restart``: the doctoral batch jobs from the shell.

``run`` launches a job in this process with the service's settings and shows its
progress; the execution is recorded in batchdb like any other (history, audit,
``GET /api/batch/jobs/executions/{id}``). Events it produces go through the
outbox: with a Kafka cluster configured they are published before the command
exits; otherwise they wait in batchdb for the running service's relay.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Annotated, TypeVar

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from tranche.batch import BatchError, BatchStatus, JobExecution
from tranche.batch.model import ParameterValue
from tranche.core.logging import configure_logging
from tranche.core.outbox import Relay, outbox_status
from tranche.core.service import migrate
from tranche.core.settings import SettingsError
from tranche.doctoral.app import SPEC
from tranche.doctoral.audit import AuditEvent, AuditEventType
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.jobs.monthly_report import MONTH
from tranche.doctoral.reports.period import Month, MonthSyntaxError
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.schemas import format_duration
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import create_foreign_schema

__all__ = ["NAME", "app"]

NAME = "job"
app = typer.Typer(no_args_is_help=True, help="The doctoral batch jobs: run, list, stop, restart.")
console = Console()
T = TypeVar("T")


def _settings() -> DoctoralSettings:
    try:
        return SPEC.load_settings()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


async def _runtime(settings: DoctoralSettings) -> Runtime:
    await migrate(SPEC, settings, sqlite_only=True)
    runtime = Runtime.build(settings)
    if settings.embedded:
        for db in runtime.sources.foreign():
            await create_foreign_schema(db.engine, db.name)
    await runtime.recover()
    return runtime


def _with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    settings = _settings()
    configure_logging("WARNING", json=False)

    async def go() -> T:
        runtime = await _runtime(settings)
        try:
            return await work(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(go())
    except BatchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _who() -> str:
    return f"cli:{getpass.getuser()}"


async def _audit(
    runtime: Runtime,
    kind: AuditEventType,
    action: str,
    status: str,
    *,
    execution_id: int | None = None,
    job_name: str | None = None,
    details: str | None = None,
) -> None:
    """The CLI's actions are audited like the API's (who: ``cli:<os user>``)."""
    await runtime.audit.record(
        AuditEvent(
            kind,
            action,
            status,
            job_name=job_name,
            execution_id=execution_id,
            user_id=_who(),
            resource_path=f"tranche job {action.lower()}",
            details=details,
            user_agent="tranche-cli",
        )
    )


def _describe(execution: JobExecution) -> str:
    steps = ", ".join(
        f"{s.step_name}: read {s.read_count}, wrote {s.write_count}"
        for s in execution.step_executions
    )
    return steps or "starting"


async def _follow(runtime: Runtime, execution_id: int, total: int | None) -> JobExecution:
    """A progress bar over the items read (a spinner when the total is unknown)."""
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    columns += [MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=total or None)
        waiting = asyncio.ensure_future(runtime.launcher.wait(execution_id))
        while not waiting.done():
            current = await runtime.repository.get_job_execution(execution_id)
            if current is not None:
                read = sum(s.read_count for s in current.step_executions)
                progress.update(task, description=_describe(current), completed=read)
            await asyncio.wait([waiting], timeout=0.3)
        final = waiting.result()
        progress.update(task, completed=sum(s.read_count for s in final.step_executions))
        return final


async def _estimate(runtime: Runtime, job_name: str) -> int | None:
    spec = runtime.spec(job_name)
    return None if spec.estimate is None else await spec.estimate(runtime.clock())


async def _flush(runtime: Runtime, timeout_s: float = 30.0) -> str:
    settings = runtime.settings
    pending = (await outbox_status(runtime.sources.batchdb)).pending
    if not pending:
        return "no events waiting"
    if not settings.kafka.bootstrap_servers:
        return f"{pending} events wait in batchdb's outbox for the service's relay"
    relay = Relay(
        runtime.sources.batchdb,
        settings.kafka,
        settings.outbox,
        CollectorRegistry(),
        name="job-cli",
    )
    await relay.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pending and loop.time() < deadline:
            await asyncio.sleep(0.2)
            pending = (await outbox_status(runtime.sources.batchdb)).pending
    finally:
        await relay.stop()
    return f"{pending} events still waiting in the outbox" if pending else "events published"


@app.command()
def run(
    job_name: Annotated[
        str,
        typer.Argument(
            metavar="JOB",
            help="tokenCleanupJob, dureeDoctoratAlertJob, monthlyReportJob, archiveJob, "
            "dataConsistencyJob",
        ),
    ],
    month: Annotated[
        str | None,
        typer.Option(help="monthlyReportJob: the month to report on, YYYY-MM (default: last)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Find and report only, change nothing (jobs that can)."),
    ] = False,
) -> None:
    """Run one job now, in this process, and show its progress and counts."""
    if month is not None:
        try:
            month = str(Month.parse(month))
        except MonthSyntaxError as exc:
            typer.echo(f"error: --month: {exc}", err=True)
            raise typer.Exit(2) from None

    async def work(runtime: Runtime) -> JobExecution:
        if dry_run and not runtime.spec(job_name).supports_dry_run:
            raise BatchError(f"job '{job_name}' has no dry run")
        total = await _estimate(runtime, job_name)
        who = _who()
        extra: dict[str, ParameterValue] = {}
        if month is not None:
            extra[MONTH] = month
        if dry_run:
            extra["dryRun"] = True
        try:
            execution_id = await runtime.start(job_name, who, extra=extra or None)
        except BatchError as exc:
            await _audit(
                runtime, AuditEventType.MANUAL_TRIGGER, "RUN", "REFUSED",
                job_name=job_name, details=str(exc),
            )  # fmt: skip
            raise
        await _audit(
            runtime, AuditEventType.MANUAL_TRIGGER, "RUN", "ACCEPTED",
            execution_id=execution_id, job_name=job_name,
        )  # fmt: skip
        console.print(f"[bold]{job_name}[/] execution {execution_id} started")
        try:
            execution = await _follow(runtime, execution_id, total)
        except asyncio.CancelledError:
            await runtime.launcher.stop(execution_id)
            raise
        console.print(await _flush(runtime))
        return execution

    execution = _with_runtime(work)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(counts_of(execution).items())) or "no items"
    console.print(
        f"[bold]{job_name}[/] execution {execution.id}: {execution.status.value} "
        f"in {format_duration(execution.duration)} ({counts})"
    )
    if execution.status is not BatchStatus.COMPLETED:
        console.print(
            f"exit: {execution.exit_status.exit_code} {execution.exit_status.exit_description}"
        )
        raise typer.Exit(1)


@app.command("list")
def list_jobs() -> None:
    """The jobs, their schedules and their last execution."""

    async def work(runtime: Runtime) -> Table:
        fire = runtime.scheduler.next_fire_times()
        table = Table(title="doctoral jobs")
        for col in ("job", "cron", "next fire (UTC)", "last execution", "status"):
            table.add_column(col)
        for name, spec in runtime.specs.items():
            last = await runtime.repository.last_job_execution(name)
            nxt = fire.get(name)
            table.add_row(
                name,
                spec.cron,
                nxt.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if nxt else "-",
                str(last.id) if last else "-",
                last.status.value if last else "-",
            )
        return table

    console.print(_with_runtime(work))


@app.command()
def stop(execution_id: Annotated[int, typer.Argument(help="Execution id")]) -> None:
    """Ask a running execution to stop after its current chunk (in whichever process runs it)."""

    async def work(runtime: Runtime) -> BatchStatus:
        try:
            status = await runtime.launcher.stop(execution_id)
        except BatchError as exc:
            await _audit(
                runtime, AuditEventType.JOB_STOP, "STOP", "REFUSED",
                execution_id=execution_id, details=str(exc),
            )  # fmt: skip
            raise
        await _audit(
            runtime, AuditEventType.JOB_STOP, "STOP", "ACCEPTED",
            execution_id=execution_id, details=status.value,
        )  # fmt: skip
        return status

    status = _with_runtime(work)
    console.print(f"execution {execution_id}: {status.value}")


@app.command()
def restart(
    execution_id: Annotated[int, typer.Argument(help="A FAILED or STOPPED execution")],
) -> None:
    """Restart a failed or stopped execution from its last committed chunk."""

    async def work(runtime: Runtime) -> JobExecution:
        try:
            new_id = await runtime.launcher.restart(execution_id)
        except BatchError as exc:
            await _audit(
                runtime, AuditEventType.JOB_RESTART, "RESTART", "REFUSED",
                execution_id=execution_id, details=str(exc),
            )  # fmt: skip
            raise
        await _audit(
            runtime, AuditEventType.JOB_RESTART, "RESTART", "ACCEPTED",
            execution_id=execution_id, details=f"restarted as execution {new_id}",
        )  # fmt: skip
        console.print(f"execution {execution_id} restarted as {new_id}")
        execution = await _follow(runtime, new_id, None)
        console.print(await _flush(runtime))
        return execution

    execution = _with_runtime(work)
    console.print(f"execution {execution.id}: {execution.status.value}")
    if execution.status is not BatchStatus.COMPLETED:
        raise typer.Exit(1)
