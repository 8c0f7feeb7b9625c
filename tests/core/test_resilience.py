"""Backoff schedule and circuit breaker state machine (tranche.core.resilience)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from tranche.core.resilience import Backoff, BreakerState, CircuitBreaker, CircuitOpenError


def test_seed_defaults_wait_one_then_two_seconds_and_stop_after_three() -> None:
    b = Backoff()
    assert [b.delay_after(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 30.0]
    assert not b.exhausted(2) and b.exhausted(3)


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 5),
    cap=st.floats(10, 100),
    attempts=st.integers(1, 40),
)
def test_delays_start_at_initial_never_shrink_and_never_pass_the_cap(
    initial: float, multiplier: float, cap: float, attempts: int
) -> None:
    b = Backoff(max_attempts=attempts, initial_s=initial, multiplier=multiplier, max_s=cap)
    delays = [b.delay_after(n) for n in range(1, attempts + 1)]
    assert delays[0] == pytest.approx(min(initial, cap))
    assert all(a <= d + 1e-9 for a, d in itertools.pairwise(delays))
    assert max(delays) <= cap


async def test_retrying_tries_max_attempts_then_reraises() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        async for attempt in Backoff(3, 0, 1, 0).retrying(ConnectionError):
            with attempt:
                calls += 1
                raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await flaky()
    assert calls == 3


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 5),
    cap=st.floats(10, 100),
    attempts=st.integers(2, 12),
)
async def test_retries_wait_what_the_persisted_schedule_and_tenacity_would(
    initial: float, multiplier: float, cap: float, attempts: int
) -> None:
    """The delays a retry loop sleeps are ``delay_after(n)``, the ones the outbox stores,
    and the ones tenacity's own exponential wait computes for the same policy."""
    b = Backoff(max_attempts=attempts, initial_s=initial, multiplier=multiplier, max_s=cap)
    ours, theirs = Sleeps(), Sleeps()

    async def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await b.retrying(ConnectionError, sleep=ours)(down)
    reference = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=initial, exp_base=multiplier, max=cap),
        sleep=theirs,
        reraise=True,
    )
    with pytest.raises(ConnectionError):
        await reference(down)
    assert ours.delays == [b.delay_after(n) for n in range(1, attempts)]
    assert ours.delays == pytest.approx(theirs.delays)


async def test_until_retries_on_results_and_returns_the_last_one() -> None:
    answers = iter(["busy", "busy", "done", "never asked"])
    sleeps = Sleeps()
    got = await Backoff(5, 1, 2, 30).until(
        lambda: _next(answers), lambda answer: answer == "done", sleep=sleeps
    )
    assert got == "done"
    assert sleeps.delays == [1.0, 2.0]

    sleeps = Sleeps()
    busy = await Backoff(3, 1, 2, 30).until(
        lambda: _next(iter(["busy"] * 5)), lambda answer: answer == "done", sleep=sleeps
    )
    assert busy == "busy"  # tries ran out: the last answer, not an error
    assert sleeps.delays == [1.0, 2.0]


async def _next(answers: Iterator[str]) -> str:
    return next(answers)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_and_probes_once_after_reset() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    cb = CircuitBreaker(3, reset_s=60, clock=clock, on_change=changes.append)
    cb.record_failure("a")
    cb.record_success()  # a success resets the count: failures must be consecutive
    for _ in range(2):
        cb.record_failure("b")
    assert cb.allow() and cb.state is BreakerState.CLOSED
    cb.record_failure("c")
    assert cb.state is BreakerState.OPEN and not cb.allow()
    with pytest.raises(CircuitOpenError, match="last error: c"):
        cb.check()
    clock.now += 59
    assert not cb.allow() and cb.retry_in() == pytest.approx(1)
    clock.now += 1
    assert cb.state is BreakerState.HALF_OPEN
    assert cb.allow() and not cb.allow()  # exactly one probe
    cb.record_failure("d")  # failed probe: open for another period
    assert cb.state is BreakerState.OPEN
    clock.now += 60
    assert cb.allow()
    cb.record_success()
    assert cb.state is BreakerState.CLOSED and cb.consecutive_failures == 0
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_an_unused_probe_permit_can_be_given_back() -> None:
    clock = Clock()
    cb = CircuitBreaker(1, reset_s=1, clock=clock)
    cb.record_failure()
    clock.now += 1
    assert cb.allow()
    cb.release()
    assert cb.allow()


@pytest.mark.parametrize("bad", [{"failure_threshold": 0}, {"reset_s": -1}])
def test_breaker_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**bad)  # type: ignore[arg-type]
