"""Tasklet steps: call the tasklet in a unit of work, again while it says CONTINUABLE.

Each call commits with the step's checkpoint (counters, contexts), so a tasklet that works
in slices (return ``RepeatStatus.CONTINUABLE`` after each) is stoppable between slices and
resumes from what it saved in ``ctx.step_context``.
"""

from __future__ import annotations

from tranche.batch.control import ExecutionControl, Snapshot
from tranche.batch.errors import JobInterruptedError
from tranche.batch.job import RepeatStatus, TaskletStep
from tranche.batch.listeners import ListenerChain
from tranche.batch.uow import StepContext

__all__ = ["TaskletExecutor"]


class TaskletExecutor:
    def __init__(
        self,
        step: TaskletStep,
        ctx: StepContext,
        control: ExecutionControl,
        listeners: ListenerChain,
    ) -> None:
        self.step = step
        self.ctx = ctx
        self.control = control
        self.listeners = listeners

    async def execute(self) -> None:
        execution = self.ctx.step_execution
        while True:
            snapshot = Snapshot.take(execution, self.ctx.job_execution)
            await self.listeners.before_chunk(self.ctx)
            uow = self.control.open_unit()
            self.ctx.bind(uow)
            try:
                result = await self.step.fn(self.ctx)
                execution.commit_count += 1
                await self.control.checkpoint(uow, execution)
                await uow.commit()
                self.control.committed()
            except BaseException as exc:
                await uow.rollback()
                snapshot.restore(execution, self.ctx.job_execution)
                execution.rollback_count += 1
                await self.listeners.after_chunk_error(self.ctx, exc)
                raise
            finally:
                self.ctx.bind(None)
            await self.listeners.after_chunk(self.ctx)
            if result is not RepeatStatus.CONTINUABLE:
                return
            if self.control.stop_requested():
                raise JobInterruptedError(f"stop requested during step '{self.step.name}'")
