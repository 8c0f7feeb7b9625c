"""A background loop: a round of work run again and again between ``start()`` and ``stop()``.

The outbox relay, the fill deliverer, topic provisioning and the purge jobs all
have the same shape: do a round, then wait until someone calls :meth:`wake` or a
poll interval passes, and on shutdown let the round in progress finish (or cut
it short) before the resources it uses are closed. A round returns how long to
wait before the next one: ``None`` for the loop's interval, ``0`` to go on at
once (more work is waiting). A round that raises is logged and the loop goes on
after the interval: a database or network hiccup must never end the loop.

Hand-written because it is twenty lines of asyncio: schedulers (apscheduler)
run jobs on a clock, and none of them offers a wake-up nor a graceful stop of
the round in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from tranche.core.logging import get_logger

__all__ = ["BackgroundLoop", "Round"]

log = get_logger(__name__)

#: One round of work; returns seconds until the next round (``None``: the interval).
Round = Callable[[], Awaitable[float | None]]


class BackgroundLoop:
    """Runs ``round`` in ``workers`` tasks that share one wake-up.

    ``grace_s`` is how long :meth:`stop` lets a round in flight finish before it is
    cancelled (0: cancelled at once).
    """

    def __init__(
        self,
        name: str,
        round: Round,
        *,
        interval_s: float,
        workers: int = 1,
        grace_s: float = 0.0,
        error_event: str = "background_round_failed",
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.name = name
        self.interval_s = interval_s
        self.workers = workers
        self.grace_s = grace_s
        self._round = round
        self._error_event = error_event
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    def wake(self) -> None:
        """Start the next round now (a round in flight is followed by another at once)."""
        self._wake.set()

    def finish(self) -> None:
        """End the loop after the current round (for a round whose work is done for good)."""
        self._stopping = True
        self._wake.set()

    def start(self, first_delay_s: float = 0.0) -> None:
        """Start the tasks (no-op while running); the first round after ``first_delay_s``."""
        if self._tasks:
            return
        self._stopping = False
        self._wake.clear()
        self._tasks = [
            asyncio.create_task(self._work(first_delay_s), name=f"{self.name}:{i}")
            for i in range(self.workers)
        ]

    async def join(self) -> None:
        """Wait until the loop has ended by itself (see :meth:`finish`)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Let the rounds in flight finish within ``grace_s``, cancel what is left, wait."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        self._stopping = True
        self._wake.set()
        if self.grace_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*tasks)), self.grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _work(self, first_delay_s: float) -> None:
        if first_delay_s > 0:
            await self._sleep(first_delay_s)
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._round()
            except Exception:
                log.exception(self._error_event, loop=self.name)
                delay = None
            if self._stopping:
                break
            if delay is not None and delay <= 0:
                await asyncio.sleep(0)  # let the others in before the next round
                continue
            await self._sleep(self.interval_s if delay is None else delay)

    async def _sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until woken, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
