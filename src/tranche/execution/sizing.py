"""Chunk sizing for bulk inserts (seed task 7.2): dynamic sizing and load-based splitting.

:class:`ChunkSizer` picks how many rows go into one insert transaction. Fixed at
``bulk_insert_batch_size`` unless dynamic sizing is on; then every chunk reports its
row count, duration and the connection pool's load, and the size moves between
``minimum`` and ``maximum`` by these rules (first match wins):

1. pool critical (≥ 95 % of connections in use, or requests queueing) → x 0.6;
2. pool busy (≥ 80 %) → x 0.8;
3. a chunk of the current size would take longer than ``target_s`` at the measured
   per-row time → shrink to what fits in ``target_s`` (at most halving);
4. pool quiet (< 50 %) and a chunk would take under half of ``target_s`` → x 1.2;
5. otherwise unchanged.

The per-row time is an exponentially weighted average, so one slow chunk nudges
the size rather than halving it. A smaller chunk holds a connection and its locks
for less time, which is what keeps a busy pool moving.

:class:`InsertGate` bounds how many bulk inserts run at once across all requests:
by default two (:data:`MAX_DEFAULT_CONCURRENCY`, measured), never more than half the
pool, so that reads and the outbox relay always find a connection and the relay keeps
its share of the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = [
    "MAX_DEFAULT_CONCURRENCY",
    "ChunkSizer",
    "InsertGate",
    "PoolLoad",
    "default_concurrency",
    "split",
]

CRITICAL_UTILISATION = 0.95
HIGH_UTILISATION = 0.8
LOW_UTILISATION = 0.5
CRITICAL_FACTOR = 0.6
DECREASE_FACTOR = 0.8
INCREASE_FACTOR = 1.2
EWMA_ALPHA = 0.3


@dataclass(frozen=True)
class PoolLoad:
    """Connections in use out of the pool's capacity, and requests waiting for one."""

    in_use: int
    capacity: int
    waiting: int = 0

    @property
    def utilisation(self) -> float:
        return self.in_use / self.capacity if self.capacity > 0 else 0.0


@dataclass
class ChunkSizer:
    base: int
    minimum: int
    maximum: int
    enabled: bool = False
    target_s: float = 0.5
    current: int = field(init=False)
    per_row_s: float | None = field(init=False, default=None)
    last_reason: str = field(init=False, default="initial")

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.maximum:
            raise ValueError("chunk sizes need 1 <= minimum <= maximum")
        self.current = self.base if not self.enabled else self._clamp(self.base)

    def _clamp(self, size: float) -> int:
        return max(self.minimum, min(self.maximum, int(size)))

    def size(self) -> int:
        return self.current

    def observe(self, rows: int, seconds: float, pool: PoolLoad) -> int:
        """Record one chunk's timing and return the size for the next chunk."""
        if not self.enabled or rows <= 0:
            return self.current
        sample = max(seconds, 0.0) / rows
        self.per_row_s = (
            sample
            if self.per_row_s is None
            else EWMA_ALPHA * sample + (1 - EWMA_ALPHA) * self.per_row_s
        )
        projected = self.per_row_s * self.current
        size: float = self.current
        if pool.utilisation >= CRITICAL_UTILISATION or pool.waiting > 0:
            size, self.last_reason = self.current * CRITICAL_FACTOR, "pool critical"
        elif pool.utilisation >= HIGH_UTILISATION:
            size, self.last_reason = self.current * DECREASE_FACTOR, "pool busy"
        elif projected > self.target_s:
            fits = self.target_s / self.per_row_s
            size, self.last_reason = max(fits, self.current / 2), "slow chunks"
        elif pool.utilisation < LOW_UTILISATION and projected < self.target_s / 2:
            size, self.last_reason = self.current * INCREASE_FACTOR, "headroom"
        else:
            self.last_reason = "steady"
        self.current = self._clamp(size)
        return self.current


def split(total: int, size: int) -> list[range]:
    """Consecutive index ranges of at most ``size`` covering ``range(total)``."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


#: Chunk transactions at once per process (``tranche bench execution``, docs/benchmarks.md):
#: a chunk keeps the process's one core busy about half of its time, so two saturate it;
#: more add no throughput (20 clients: about 11k executions/s at 1 or 2, 8.4k at 6) but crowd
#: the outbox relay off the event loop (p99 commit-to-broker 0.4 s at 2, 1.0 s at 6).
MAX_DEFAULT_CONCURRENCY = 2


def default_concurrency(pool_size: int, max_overflow: int, dialect: str) -> int:
    """Bulk inserts allowed at once: two, at most half the pool; one on SQLite (a single
    writer)."""
    if dialect == "sqlite":
        return 1
    return max(1, min(MAX_DEFAULT_CONCURRENCY, (pool_size + max_overflow) // 2))


class InsertGate:
    """An asyncio semaphore that also reports how many inserts wait for it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *_exc: object) -> None:
        self._sem.release()
