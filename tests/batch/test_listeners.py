from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, Boom, counting_job
from tranche.batch import (
    BatchListener,
    BatchStatus,
    Job,
    JobExecution,
    JobLauncher,
    JobRepository,
    StepContext,
    StepExecution,
)


class Trace(BatchListener):
    def __init__(self, name: str, log: list[str], fail: str = "") -> None:
        self.name, self.log, self.fail = name, log, fail

    def _note(self, event: str) -> None:
        self.log.append(f"{self.name}.{event}")
        if event == self.fail:
            raise Boom(f"{self.name} fails in {event}")

    async def before_job(self, execution: JobExecution) -> None:
        self._note("before_job")

    async def after_job(self, execution: JobExecution) -> None:
        self._note("after_job")

    async def before_step(self, step: StepExecution) -> None:
        self._note("before_step")

    async def after_step(self, step: StepExecution) -> None:
        self._note("after_step")

    async def before_chunk(self, ctx: StepContext) -> None:
        self._note("before_chunk")

    async def after_chunk(self, ctx: StepContext) -> None:
        self._note("after_chunk")

    async def after_chunk_error(self, ctx: StepContext, error: BaseException) -> None:
        self._note("after_chunk_error")


async def test_listener_order_and_error_rules(engine: AsyncEngine) -> None:
    log: list[str] = []
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS, listeners=[Trace("L", log)])
    base = counting_job("listenedJob", 3, 2)
    job = Job(base.name, base.steps, listeners=[Trace("J", log, fail="after_job")])
    execution = await launcher.run(job)
    # A failing after_* callback is logged, never turns a completed job into a failed one.
    assert execution.status is BatchStatus.COMPLETED
    chunk = ["L.before_chunk", "J.before_chunk", "J.after_chunk", "L.after_chunk"]
    assert log == [
        "L.before_job", "J.before_job", "L.before_step", "J.before_step",
        *chunk, *chunk,
        "J.after_step", "L.after_step", "J.after_job", "L.after_job",
    ]  # fmt: skip

    log.clear()
    blocked = Job("blockedJob", base.steps, listeners=[Trace("J", log, fail="before_job")])
    failed = await launcher.run(blocked)
    assert failed.status is BatchStatus.FAILED
    assert "J fails in before_job" in failed.exit_status.exit_description
    assert failed.step_executions == []
    assert log == ["L.before_job", "J.before_job", "J.after_job", "L.after_job"]


async def test_chunk_error_listener_hears_the_rollback(engine: AsyncEngine) -> None:
    log: list[str] = []

    async def explode(items: Any, ctx: StepContext) -> None:
        raise Boom("no")

    base = counting_job("errJob", 2, 2)
    step = base.steps[0]
    job = Job("errJob", [replace(step, writer=explode, listeners=[Trace("S", log)])])
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    assert (await launcher.run(job)).status is BatchStatus.FAILED
    assert log == ["S.before_step", "S.before_chunk", "S.after_chunk_error", "S.after_step"]
