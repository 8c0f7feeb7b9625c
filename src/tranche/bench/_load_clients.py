"""The pieces of ``tranche bench load`` that watch the execution service: concurrent
clients posting batches for a bounded time, the server's resident memory, and what
reached the broker (read back from the topic, counted by key and event id)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer

from tranche.bench._execution_load import Served, batch_body, pct
from tranche.core.outbox.enqueue import EVENT_ID_HEADER

if TYPE_CHECKING:
    import psutil

__all__ = [
    "MIB",
    "Delivery",
    "RssWatch",
    "load_average",
    "post_for",
    "read_topic",
    "rss_watch",
]

MIB = 2**20
#: tradeServiceExecutionId of the clients' items: far above the trade service's own
#: execution ids, so the two kinds of rows are told apart in the execution database.
_FIRST_OFFSET = 100_000_000


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


@dataclass
class RssWatch:
    """Resident memory of a process, sampled every ``every_s`` while a run goes on."""

    process: psutil.Process
    every_s: float = 0.5
    samples: list[tuple[float, float]] = field(default_factory=list)

    def now_mib(self) -> float:
        return float(self.process.memory_info().rss) / MIB

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the process has used so far."""
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def at_mib(self, when: float) -> float:
        """The sample taken nearest to ``when`` (a ``time.monotonic()`` instant)."""
        if not self.samples:
            return self.now_mib()
        return min(self.samples, key=lambda s: abs(s[0] - when))[1]

    def peak_mib(self, since: float = 0.0) -> float:
        return max((m for t, m in self.samples if t >= since), default=self.now_mib())

    async def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.now_mib()))
            await asyncio.sleep(self.every_s)


@asynccontextmanager
async def rss_watch(pid: int, every_s: float = 0.5) -> AsyncIterator[RssWatch]:
    import psutil  # the ``demo`` extra: benchmarks only, so imported when one runs

    watch = RssWatch(psutil.Process(pid), every_s)
    task = asyncio.create_task(watch._sample())
    try:
        yield watch
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


_requests = itertools.count()


@dataclass
class _Tally:
    latencies_ms: list[float] = field(default_factory=list)
    executions: int = 0
    errors: list[str] = field(default_factory=list)
    first_start: float = 0.0
    last_end: float = 0.0


def _accepted(reply: dict[str, Any]) -> tuple[list[int], int]:
    """Ids of the created executions, and how many items were not created."""
    ids = [
        int(r["execution"]["id"])
        for r in reply.get("results", ())
        if r.get("status") == "SUCCESS" and r.get("execution")
    ]
    return ids, int(reply.get("totalRequested", 0)) - len(ids)


async def post_for(
    target: Served,
    watch: RssWatch,
    clients: int,
    duration_s: float,
    warmup_s: float,
    batch: int,
    accepted: set[int],
) -> dict[str, Any]:
    """``clients`` clients, each posting ``batch``-item batches back to back: first for
    ``warmup_s`` (not counted; every client's last warm-up request is awaited), then,
    once RSS start is taken, for ``duration_s``: a request started before the end
    counts, so the measured window ends with the last answer. Every created
    execution's id goes into ``accepted``."""
    loop = asyncio.get_running_loop()
    tally = _Tally()

    async def client(until: float, counted: bool) -> None:
        while (start := loop.time()) < until:
            body = batch_body(batch, _FIRST_OFFSET + next(_requests) * batch)
            try:
                r = await target.post(body)
            except Exception as exc:  # counted, and the run goes on: errors are a result
                tally.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            end = loop.time()
            reply = orjson.loads(r.content) if r.status_code in (201, 207) else {}
            ids, failed = _accepted(reply)
            accepted.update(ids)
            if r.status_code != 201 or failed:
                tally.errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
            if counted:
                tally.latencies_ms.append((end - start) * 1000)
                tally.executions += len(ids)
                tally.last_end = max(tally.last_end, end)

    warm_until = loop.time() + warmup_s
    await asyncio.gather(*(client(warm_until, counted=False) for _ in range(clients)))
    warmup_errors = len(tally.errors)
    rss_start = watch.now_mib()
    cpu_start, own_start = watch.cpu_s(), time.process_time()
    tally.first_start = loop.time()
    until = tally.first_start + duration_s
    await asyncio.gather(*(client(until, counted=True) for _ in range(clients)))
    rss_end = watch.now_mib()
    cpu_s, own_s = watch.cpu_s() - cpu_start, time.process_time() - own_start
    seconds = max(tally.last_end - tally.first_start, 1e-9)
    lat = tally.latencies_ms
    return {
        "clients": clients,
        "batch": batch,
        "warmup_s": warmup_s,
        "duration_s": round(seconds, 2),
        "requests": len(lat),
        "executions": tally.executions,
        "executions_per_s": round(tally.executions / seconds, 1),
        "requests_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(pct(lat, 0.99), 1) if lat else None,
        "errors": len(tally.errors) - warmup_errors,
        "error_sample": tally.errors[:3],
        "warmup_errors": warmup_errors,
        # CPU the server spent per request, and its share of the wall time: with 2 cores
        # shared, a low share means the requests waited for a core, not for the service.
        "server_cpu_ms_per_request": round(cpu_s * 1000 / len(lat), 1) if lat else None,
        "server_cpu_share": round(cpu_s / seconds, 2),
        "client_cpu_share": round(own_s / seconds, 2),
        "rss_start_mib": round(rss_start, 1),
        "rss_mid_mib": round(watch.at_mib(tally.first_start + seconds / 2), 1),
        "rss_end_mib": round(rss_end, 1),
        "rss_peak_mib": round(watch.peak_mib(since=tally.first_start), 1),
        "load": load_average(),
    }


@dataclass
class Delivery:
    """What the topic holds, by execution id (the record key) and by event id."""

    by_key: Counter[int]
    event_ids: Counter[str]

    @property
    def records(self) -> int:
        return sum(self.by_key.values())

    def check(self, accepted: Iterable[int]) -> dict[str, int]:
        """For these execution ids: how many arrived exactly once, twice or more, never."""
        ids = set(accepted)
        once = sum(1 for i in ids if self.by_key.get(i) == 1)
        twice = sum(1 for i in ids if self.by_key.get(i, 0) > 1)
        return {
            "accepted": len(ids),
            "delivered_once": once,
            "duplicated": twice,
            "missing": len(ids) - once - twice,
        }

    def duplicate_event_ids(self) -> int:
        return sum(1 for n in self.event_ids.values() if n > 1)


async def read_topic(
    bootstrap: str, topic: str, expected: int, idle_s: float = 10.0, limit_s: float = 300.0
) -> Delivery:
    """Every record of ``topic`` from the earliest offset, until ``expected`` arrived and
    nothing more came for a moment (so duplicates beyond ``expected`` are seen too), or
    nothing came for ``idle_s``. No consumer group: joining one costs the embedded broker
    seconds, and without one every partition is read from its start."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * MIB,
    )
    await consumer.start()
    by_key: Counter[int] = Counter()
    event_ids: Counter[str] = Counter()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        quiet_since = loop.time()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            got = sum(len(records) for records in batch.values())
            for records in batch.values():
                for record in records:
                    by_key[int(record.key or b"0")] += 1
                    headers = dict(record.headers)
                    event_ids[headers.get(EVENT_ID_HEADER, b"").decode()] += 1
            if got:
                quiet_since = loop.time()
            quiet = loop.time() - quiet_since
            if (sum(by_key.values()) >= expected and quiet >= 1.0) or quiet >= idle_s:
                break
    finally:
        await consumer.stop()
    return Delivery(by_key, event_ids)
