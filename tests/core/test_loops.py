"""The background loop (tranche.core.loops): wake, interval, errors, graceful stop."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from tranche.core.loops import BackgroundLoop

HOUR = 3600.0  # an interval no test waits out: every round here comes from a wake-up


class Rounds:
    """A round that counts itself and lets the test wait for the n-th one."""

    def __init__(self, answer: float | None = None) -> None:
        self.count = 0
        self.answer = answer
        self.changed = asyncio.Condition()
        self.fail_next = False

    async def __call__(self) -> float | None:
        async with self.changed:
            self.count += 1
            self.changed.notify_all()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("database hiccup")
        return self.answer

    async def reach(self, n: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.count >= n), 10)


async def test_the_first_round_runs_at_start_and_the_next_on_a_wake() -> None:
    rounds = Rounds()
    loop = BackgroundLoop("t", rounds, interval_s=HOUR)
    loop.start()
    try:
        await rounds.reach(1)
        loop.wake()
        await rounds.reach(2)
        assert loop.running
    finally:
        await loop.stop()
    assert not loop.running
    assert rounds.count == 2


async def test_a_round_that_says_more_is_waiting_is_followed_at_once() -> None:
    rounds = Rounds(answer=0.0)
    loop = BackgroundLoop("t", rounds, interval_s=HOUR)
    loop.start()
    try:
        await rounds.reach(5)
    finally:
        await loop.stop()


async def test_a_failing_round_is_logged_and_the_loop_goes_on() -> None:
    rounds = Rounds()
    rounds.fail_next = True
    loop = BackgroundLoop("t", rounds, interval_s=HOUR, error_event="t_round_failed")
    with structlog.testing.capture_logs() as logs:
        loop.start()
        try:
            await rounds.reach(1)
            loop.wake()
            await rounds.reach(2)
        finally:
            await loop.stop()
    failed = [e for e in logs if e["event"] == "t_round_failed"]
    assert len(failed) == 1
    assert failed[0]["loop"] == "t"


async def test_stop_lets_a_round_in_flight_finish_within_the_grace() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []

    async def slow() -> None:
        started.set()
        await release.wait()
        finished.append(True)

    loop = BackgroundLoop("t", slow, interval_s=HOUR, grace_s=30)
    loop.start()
    await asyncio.wait_for(started.wait(), 10)
    stopping = asyncio.create_task(loop.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # waits for the round
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert finished == [True]


async def test_without_grace_stop_cancels_the_round_in_flight() -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    loop = BackgroundLoop("t", stuck, interval_s=HOUR)
    loop.start()
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.wait_for(loop.stop(), 10)
    assert cancelled == [True]


async def test_finish_ends_the_loop_after_its_round_and_workers_share_the_wake() -> None:
    rounds = Rounds()
    loop = BackgroundLoop("t", rounds, interval_s=HOUR, workers=3)
    loop.start()
    try:
        await rounds.reach(3)  # each worker's first round
        loop.wake()
        await rounds.reach(6)  # one wake-up rouses all three
        loop.finish()
        await asyncio.wait_for(loop.join(), 10)
        assert not loop.running
        assert rounds.count == 6
    finally:
        await loop.stop()


async def test_the_first_round_can_wait_and_a_wake_cuts_the_wait_short() -> None:
    rounds = Rounds()
    loop = BackgroundLoop("t", rounds, interval_s=HOUR)
    loop.start(first_delay_s=HOUR)
    try:
        await asyncio.sleep(0)
        assert rounds.count == 0
        loop.wake()
        await rounds.reach(1)
    finally:
        await loop.stop()


@pytest.mark.parametrize("bad", [{"interval_s": 0}, {"interval_s": 1, "workers": 0}])
def test_nonsense_is_refused(bad: dict[str, float]) -> None:
    async def nothing() -> None:
        return None

    with pytest.raises(ValueError):
        BackgroundLoop("t", nothing, **bad)  # type: ignore[arg-type]
