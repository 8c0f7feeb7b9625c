"""Listeners: callbacks before/after a job, a step and a chunk, and on skipped items.

Subclass :class:`BatchListener` and override what you need. Order follows Spring Batch:
``before_*`` in registration order, ``after_*`` in reverse. An exception in a ``before_*``
callback fails the job or step (it may be a precondition); one in an ``after_*`` or skip
callback is logged and ignored, so a broken notifier cannot turn a completed job into a
failed one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tranche.batch.model import JobExecution, StepExecution
from tranche.core.logging import get_logger

if TYPE_CHECKING:
    from tranche.batch.uow import StepContext

__all__ = ["BatchListener", "ListenerChain"]

log = get_logger(__name__)


class BatchListener:
    """No-op base: job, step, chunk and skip callbacks."""

    async def before_job(self, execution: JobExecution) -> None:
        return None

    async def after_job(self, execution: JobExecution) -> None:
        return None

    async def before_step(self, step: StepExecution) -> None:
        return None

    async def after_step(self, step: StepExecution) -> None:
        return None

    async def before_chunk(self, ctx: StepContext) -> None:
        """A chunk was read and is about to be processed and written (or a tasklet called)."""

    async def after_chunk(self, ctx: StepContext) -> None:
        """After the chunk committed."""

    async def after_chunk_error(self, ctx: StepContext, error: BaseException) -> None:
        """After the chunk rolled back (it may be retried)."""

    async def on_skip_in_read(self, step: StepExecution, error: BaseException) -> None:
        return None

    async def on_skip_in_process(
        self, step: StepExecution, item: Any, error: BaseException
    ) -> None:
        return None

    async def on_skip_in_write(self, step: StepExecution, item: Any, error: BaseException) -> None:
        return None


class ListenerChain:
    """Calls a list of listeners with Spring's ordering and error rules."""

    def __init__(self, listeners: Sequence[BatchListener]) -> None:
        self._listeners = list(listeners)

    def __add__(self, more: Sequence[BatchListener]) -> ListenerChain:
        return ListenerChain([*self._listeners, *more])

    async def before_job(self, execution: JobExecution) -> None:
        for listener in self._listeners:
            await listener.before_job(execution)

    async def after_job(self, execution: JobExecution) -> None:
        await self._after("after_job", execution)

    async def before_step(self, step: StepExecution) -> None:
        for listener in self._listeners:
            await listener.before_step(step)

    async def after_step(self, step: StepExecution) -> None:
        await self._after("after_step", step)

    async def before_chunk(self, ctx: StepContext) -> None:
        for listener in self._listeners:
            await listener.before_chunk(ctx)

    async def after_chunk(self, ctx: StepContext) -> None:
        await self._after("after_chunk", ctx)

    async def after_chunk_error(self, ctx: StepContext, error: BaseException) -> None:
        await self._after("after_chunk_error", ctx, error)

    async def on_skip_in_read(self, step: StepExecution, error: BaseException) -> None:
        await self._after("on_skip_in_read", step, error)

    async def on_skip_in_process(
        self, step: StepExecution, item: Any, error: BaseException
    ) -> None:
        await self._after("on_skip_in_process", step, item, error)

    async def on_skip_in_write(self, step: StepExecution, item: Any, error: BaseException) -> None:
        await self._after("on_skip_in_write", step, item, error)

    async def _after(self, name: str, *args: Any) -> None:
        for listener in reversed(self._listeners):
            try:
                await getattr(listener, name)(*args)
            except Exception:
                log.exception(
                    "batch.listener.failed", listener=type(listener).__name__, callback=name
                )
