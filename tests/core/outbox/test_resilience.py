"""Backoff schedule and circuit breaker state machine (tranche.core.resilience)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
