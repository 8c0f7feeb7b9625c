"""``retrying``: a bare first attempt, then tenacity, with one loop's attempts and waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tranche.batch import RetryPolicy
from tranche.batch.retry import retrying


class Flaky(Exception):
    pass


def policy(attempts: int) -> RetryPolicy:
    return RetryPolicy(retry_on=(Flaky,), attempts=attempts, initial_backoff=0.01, max_backoff=0.03)


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff sleeps asked for (tenacity and ours both go through asyncio.sleep)."""
    asked: list[float] = []
    real = asyncio.sleep

    async def record(seconds: float, *args: object) -> None:
        asked.append(round(seconds, 6))
        await real(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    return asked


def failing(times: int) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Flaky(f"call {len(calls)}")
        return "done"

    return calls, fn


async def test_a_success_first_time_calls_once_and_never_waits(waits: list[float]) -> None:
    calls, fn = failing(0)
    assert await retrying(policy(4), fn, "x") == "done"
    assert (len(calls), waits) == (1, [])


async def test_failures_below_the_attempts_are_retried_with_exponential_capped_waits(
    waits: list[float],
) -> None:
    calls, fn = failing(3)
    assert await retrying(policy(4), fn, "x") == "done"
    assert len(calls) == 4
    assert waits == [0.01, 0.02, 0.03]


@pytest.mark.parametrize("attempts", [2, 3, 5])
async def test_a_persistent_failure_is_tried_exactly_attempts_times_then_raised(
    waits: list[float], attempts: int
) -> None:
    calls, fn = failing(100)
    with pytest.raises(Flaky, match=f"call {attempts}$"):
        await retrying(policy(attempts), fn, "x")
    assert len(calls) == attempts
    assert len(waits) == attempts - 1


async def test_an_error_the_policy_does_not_retry_is_raised_at_once(waits: list[float]) -> None:
    async def fn() -> str:
        raise KeyError("no")

    with pytest.raises(KeyError):
        await retrying(policy(4), fn, "x")
    assert waits == []
