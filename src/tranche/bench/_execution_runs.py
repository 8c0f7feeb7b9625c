"""Measured runs of ``tranche bench execution``: the per-size samples (every path in
turn on the same machine state) and the concurrent-clients run on a fresh service."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tranche.bench._execution_load import (
    Floor,
    OutboxProbe,
    Served,
    batch_body,
    outbox_probe,
    pct,
    scratch_database,
    served,
)

Say = Callable[[str], None]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def old_samples(n: int, samples: int) -> int:
    """The original's path needs seconds per large batch: fewer samples there."""
    return max(3, min(samples, 10_000 // max(n, 1)))


async def timed(target: Served, body: bytes) -> float:
    """Milliseconds of one batch request, which must create every item."""
    start = time.perf_counter()
    await ok(target, body)
    return (time.perf_counter() - start) * 1000


async def size_samples(
    sizes: list[int],
    samples: int,
    floor: Floor,
    new: dict[str, tuple[Served, OutboxProbe]],
    old: Served,
    say: Say,
) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        body = batch_body(n)
        say(f"sizes: {n} items ({samples} samples, original path {old_samples(n, samples)}) …")
        for target, probe in new.values():
            await ok(target, body)
            await probe.drained()
        await ok(old, body)
        await floor.once(n)
        await floor.once(n, outbox=True)
        ms: dict[str, list[float]] = {k: [] for k in ("floor", "floor_outbox", *new, "old")}
        for i in range(samples):
            ms["floor"].append(await floor.once(n) * 1000)
            ms["floor_outbox"].append(await floor.once(n, outbox=True) * 1000)
            for name, (target, probe) in new.items():
                ms[name].append(await timed(target, body))
                await probe.drained()
            if i < old_samples(n, samples):
                ms["old"].append(await timed(old, body))
        row: dict[str, Any] = {"n": n, "samples": samples}
        for name, values in ms.items():
            key = {
                "http": "new",
                "floor": "floor",
                "floor_outbox": "floor_outbox",
                "old": "old",
            }.get(name, f"new_{name}")
            row[f"{key}_p50_ms"] = round(statistics.median(values), 2)
            row[f"{key}_p95_ms"] = round(pct(values, 0.95), 2)
        row["old_samples"] = len(ms["old"])
        row["new_over_floor"] = round(row["new_p50_ms"] / row["floor_p50_ms"], 2)
        row["old_over_new"] = round(row["old_p50_ms"] / row["new_p50_ms"], 2)
        row["new_over_floor_outbox"] = round(row["new_p50_ms"] / row["floor_outbox_p50_ms"], 2)
        row["new_asgi_over_floor"] = round(row["new_asgi_p50_ms"] / row["floor_p50_ms"], 2)
        row["new_wait_over_floor"] = round(row["new_wait_p50_ms"] / row["floor_p50_ms"], 2)
        row["old_over_new_wait"] = round(row["old_p50_ms"] / row["new_wait_p50_ms"], 2)
        row["load"] = load_average()
        out.append(row)
    return out


async def ok(target: Served, body: bytes) -> None:
    r = await target.post(body)
    if r.status_code != 201:
        raise RuntimeError(f"{target.name} answered {r.status_code}: {r.text[:300]}")


async def concurrent(
    target: Served, probe: OutboxProbe, clients: int, per_client: int, batch: int
) -> dict[str, Any]:
    """``clients`` clients, each posting ``per_client`` batches one after another."""
    body = batch_body(batch)
    await probe.drained()
    mark = await probe.mark()
    latencies: list[float] = []
    errors: list[str] = []

    async def client() -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            try:
                r = await target.post(body)
            except Exception as exc:  # counted, and the run goes on: errors are a result
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append((time.perf_counter() - start) * 1000)
            if r.status_code != 201:
                errors.append(f"HTTP {r.status_code}: {r.text[:200]}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    seconds = time.perf_counter() - start
    drain = await probe.drained(step_s=0.005)
    published = await probe.publish_latencies_ms(mark)
    created = clients * per_client * batch
    return {
        "clients": clients,
        "batch": batch,
        "batches": clients * per_client,
        "executions": created,
        "seconds": round(seconds, 2),
        "executions_per_s": round(created / seconds),
        "errors": len(errors),
        "error_sample": errors[:3],
        "p50_request_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_request_ms": round(pct(latencies, 0.99), 1) if latencies else None,
        "p50_publish_ms": round(statistics.median(published), 1) if published else None,
        "p99_publish_ms": round(pct(published, 0.99), 1) if published else None,
        "published": len(published),
        "drain_ms": round(drain * 1000, 1),
        "load": load_average(),
    }


async def pool_run(
    dsn: str,
    bootstrap: str,
    work: Path,
    size: int | None,
    clients: int,
    per_client: int,
    batch: int,
    **settings: Any,
) -> dict[str, Any]:
    """The concurrency run on a fresh database and service with its defaults but
    ``settings`` and, with ``size``, a pool of that size (overflow 0)."""
    if size is not None:
        settings |= {"db_pool_size": size, "db_max_overflow": 0}
    label = f"pool{size}" if size is not None else "load"
    async with (
        scratch_database(dsn, label) as url,
        served(label, url, bootstrap, work, max_batch_size=max(batch, 100), **settings) as target,
        outbox_probe(url) as probe,
    ):
        await ok(target, batch_body(batch))
        row = await concurrent(target, probe, clients, per_client, batch)
    return {"pool_size": size, **settings, **row}
