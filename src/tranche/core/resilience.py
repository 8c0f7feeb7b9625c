"""Retry with exponential backoff and a circuit breaker, for any remote call.

:class:`Backoff` is the one retry policy (attempts, initial delay, multiplier, cap)
and tenacity runs every in-process retry loop with it: :meth:`Backoff.retrying`
retries on exceptions (HTTP clients), :meth:`Backoff.until` on results (a call
that answers "not yet"). Callers that persist their retry schedule (the outbox
and the fill deliverer store the next attempt time in the row, so a restart
does not forget it) ask :meth:`Backoff.delay_after`. Both read the same pure
function, :func:`exponential_delay`; :class:`BackoffWait` is the tenacity wait
strategy built on it, so the schedule cannot differ between the two.

:class:`CircuitBreaker` is hand-written on purpose. Its users need to *ask*
whether a call may go out before doing any work (the outbox relay must not
claim rows while the broker is down), to decide themselves which failures
count (a rejected record says nothing about the broker's health), to read the
state for a gauge, and to inject the clock in tests. The maintained async
breakers (purgatory, aiobreaker, circuitbreaker) wrap a callable and count
every exception, so they would need more glue than the state machine itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
)
from tenacity.wait import wait_base

__all__ = [
    "Backoff",
    "BackoffWait",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "exponential_delay",
]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


def exponential_delay(attempt: int, initial_s: float, multiplier: float, max_s: float) -> float:
    """``initial_s * multiplier**(attempt-1)`` seconds, at most ``max_s`` (``attempt`` >= 1)."""
    try:
        delay = initial_s * multiplier ** (max(attempt, 1) - 1)
    except OverflowError:  # a float power that large is past any cap
        return max_s
    return min(delay, max_s)


@dataclass(frozen=True)
class Backoff:
    """``max_attempts`` tries; the wait after try *n* is ``initial_s * multiplier**(n-1)``.

    ``max_s`` caps each wait.
    """

    max_attempts: int = 3
    initial_s: float = 1.0
    multiplier: float = 2.0
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_s < 0 or self.max_s < self.initial_s:
            raise ValueError("need 0 <= initial_s <= max_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based) before the next one."""
        return exponential_delay(attempt, self.initial_s, self.multiplier, self.max_s)

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def retrying(
        self,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        **kwargs: Any,
    ) -> AsyncRetrying:
        """An ``async for attempt in backoff.retrying(...)`` loop with this policy; re-raises.

        ``kwargs`` go to tenacity (``sleep``, ``before_sleep``…).
        """
        return AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=BackoffWait(self),
            retry=retry_if_exception_type(retry_on),
            reraise=True,
            **kwargs,
        )

    async def until(
        self,
        attempt: Callable[[], Awaitable[T]],
        settled: Callable[[T], bool],
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> T:
        """Call ``attempt`` until ``settled`` says its result is final or the tries run out;
        returns the last result either way (exceptions are not retried)."""

        async def call() -> T:  # tenacity awaits only what it sees is a coroutine function
            return await attempt()

        def last_result(state: RetryCallState) -> Any:
            assert state.outcome is not None
            return state.outcome.result()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=BackoffWait(self),
            retry=retry_if_result(lambda result: not settled(result)),
            retry_error_callback=last_result,
            sleep=sleep,
            reraise=True,
        )
        result: T = await retrying(call)
        return result


class BackoffWait(wait_base):
    """The tenacity wait strategy of a :class:`Backoff`: after try *n*, ``delay_after(n)``."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.backoff.delay_after(retry_state.attempt_number)


class BreakerState(IntEnum):
    """Values match the ``*_circuit_state`` gauges: 0 closed, 1 half-open, 2 open."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitOpenError(RuntimeError):
    """A call was refused because the circuit is open."""


class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; when the open period is over,
    one probe.

    A success closes it (and resets the count); a failed probe opens it again. The open
    period starts at ``first_open_s`` and doubles with each failed probe up to
    ``reset_s``, so a short outage is noticed over within seconds while a long one is
    probed at most every ``reset_s`` (``first_open_s`` None: always ``reset_s``).
    ``allow()`` is the gate: it returns False while open, and True for exactly one caller
    in half-open until that caller reports back.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
        first_open_s: float | None = None,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_s < 0:
            raise ValueError("reset_s must not be negative")
        if first_open_s is not None and not 0 <= first_open_s <= reset_s:
            raise ValueError("need 0 <= first_open_s <= reset_s")
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.first_open_s = reset_s if first_open_s is None else first_open_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opens = 0  # times opened since the last success
        self._opened_at = 0.0
        self._probe_out = False
        self.last_error: str | None = None

    @property
    def open_s(self) -> float:
        """How long the circuit stays open this time (0 when it has not opened)."""
        if self._opens == 0:
            return 0.0
        return exponential_delay(self._opens, self.first_open_s, 2.0, self.reset_s)

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.open_s:
            self._set(BreakerState.HALF_OPEN)
            self._probe_out = False
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_in(self) -> float:
        """Seconds until an open circuit half-opens (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.open_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def release(self) -> None:
        """Give back a half-open probe permit that was not used (no call went out)."""
        self._probe_out = False

    def check(self) -> None:
        """Raise :class:`CircuitOpenError` unless a call may go out now."""
        if not self.allow():
            raise CircuitOpenError(f"circuit open; last error: {self.last_error or 'unknown'}")

    def record_success(self) -> None:
        self._failures = 0
        self._opens = 0
        self._probe_out = False
        self.last_error = None
        if self._state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self, error: str | None = None) -> None:
        self._failures += 1
        self._probe_out = False
        self.last_error = error
        state = self.state  # an open period that is over is half-open by now
        if state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            if state is not BreakerState.OPEN:
                self._opens += 1
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
