"""The engine's retry of a read, a process call or a chunk write: ``Backoff`` on tenacity.

The schedule is :class:`tranche.core.resilience.Backoff`'s (the one the rest of the code
uses: waits ``initial * 2**(n-1)``, capped), run by tenacity with
:class:`~tranche.core.resilience.BackoffWait`. The only thing of our own is the fast
path: the first attempt runs bare, because this wraps every item read and tenacity's
machinery costs more than reading one buffered row. A retryable failure of that first
attempt is handed to tenacity as its attempt 1, so attempts, waits and logs are those of
one tenacity loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from tranche.batch.job import RetryPolicy
from tranche.core.logging import get_logger
from tranche.core.resilience import Backoff, BackoffWait

__all__ = ["backoff_of", "retrying"]

log = get_logger(__name__)

R = TypeVar("R")


def backoff_of(policy: RetryPolicy) -> Backoff:
    """The policy's schedule as a :class:`Backoff` (doubling waits, capped)."""
    return Backoff(
        max_attempts=policy.attempts,
        initial_s=policy.initial_backoff,
        multiplier=2.0,
        max_s=policy.max_backoff,
    )


async def retrying(policy: RetryPolicy, fn: Callable[[], Awaitable[R]], what: str) -> R:
    """``await fn()``, retried on the policy's exceptions with its backoff."""
    if not policy.enabled:
        return await fn()
    try:
        return await fn()
    except Exception as exc:
        if not policy.retries(exc):
            raise
        first: Exception | None = exc

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "batch.retry", what=what, attempt=state.attempt_number, error=type(error).__name__
        )

    backoff = backoff_of(policy)
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(backoff.max_attempts),
        wait=BackoffWait(backoff),
        retry=retry_if_exception(policy.retries),
        before_sleep=log_retry,
        reraise=True,
    ):
        with attempt:
            if first is not None:
                failed, first = first, None
                raise failed  # the bare attempt's failure, as tenacity's attempt 1
            return await fn()
    raise AssertionError("tenacity returned without a result")  # pragma: no cover
