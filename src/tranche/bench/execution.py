"""``tranche bench execution``: the execution service's batch endpoint, old path vs bulk path
vs the raw database floor, and under concurrent clients.

On fresh PostgreSQL databases (created on ``--dsn``'s server, dropped afterwards) and
the embedded broker (or ``--bootstrap``):

* **sizes** — for each batch size, p50/p95 of the whole ``POST /api/v1/executions/batch``:
  the bulk path through a real ``tranche serve execution`` (uvicorn, HTTP on loopback)
  answering at commit (``EXECUTION_PUBLISH_WAIT_MS=0``) and with the default publish wait
  (the answer waits for the broker's acks so ``sentTimestamp`` is filled); the bulk path
  in-process through httpx's ASGI transport; the original's path
  (:mod:`tranche.bench._sequential_server`, HTTP); and the floor: the same rows written
  with asyncpg alone (reserve ids, COPY, commit). The contenders take turns, and after
  each bulk sample the bench waits for the outbox to drain, so every sample starts idle.
* **concurrency** — N clients each posting ``--batches-per-client`` 1 000-item batches to
  the service with its default settings: executions/s, errors, p99 commit→broker latency
  (outbox row written → ``sent_timestamp`` stamped after the ack) and how long after the
  last response the outbox backlog is back to 0.
* **pools** — the concurrency run at each ``--pools`` size (overflow 0): what the
  ``EXECUTION_DB_POOL_SIZE`` default was chosen from.
* **profile** — pyinstrument over in-process 1 000-item requests (relay off), summed by
  stage; ``--profile FILE`` keeps the whole tree.

The report goes to docs/benchmarks.md (section ``execution``) with the chart
docs/benchmarks-execution.png.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tranche.bench._execution_load import (
    SERVE_SEQUENTIAL,
    Floor,
    batch_body,
    in_process,
    outbox_probe,
    scratch_database,
    served,
)
from tranche.bench._execution_report import chart, markdown, profile_stages, ratios
from tranche.bench._execution_runs import Say, load_average, ok, pool_run, size_samples
from tranche.bench._report import write_section
from tranche.core.broker import EmbeddedBroker
from tranche.core.logging import configure_logging
from tranche.core.service import run_loop, settle_heap
from tranche.execution.settings import ExecutionOutboxSettings

__all__ = ["main", "register", "run"]

DEFAULT_SIZES = (10, 100, 1000, 5000)


async def _profile(url: str, bootstrap: str, work: Path, n: int, keep: Path | None) -> Any:
    from pyinstrument import Profiler

    body = batch_body(n)
    async with in_process(
        "profiled",
        url,
        bootstrap,
        work,
        max_batch_size=max(n, 100),
        publish_wait_ms=0,
        outbox=ExecutionOutboxSettings(relay_enabled=False),
        create_orders_topic=False,
    ) as target:
        for _ in range(3):
            await ok(target, body)
        threshold = gc.get_threshold()
        settle_heap()  # as tranche serve does
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        requests = 10
        profiler.start()
        try:
            for _ in range(requests):
                await ok(target, body)
        finally:
            profiler.stop()
            gc.unfreeze()
            gc.set_threshold(*threshold)
    if keep is not None:
        await asyncio.to_thread(keep.write_text, profiler.output_text(unicode=True, color=False))
    return profile_stages(profiler.last_session, requests, n)


async def run(
    *,
    dsn: str,
    sizes: list[int],
    samples: int,
    clients: list[int],
    per_client: int,
    batch: int,
    pools: list[int],
    inserts: list[int],
    bootstrap: str | None,
    profile: bool,
    profile_file: Path | None,
    say: Say,
) -> dict[str, Any]:
    results: dict[str, Any] = {"load_before": load_average(), "cpus": os.cpu_count()}
    largest = max([*sizes, batch, 100])
    broker = None
    if bootstrap is None:
        broker = EmbeddedBroker()
        await asyncio.to_thread(broker.start)
        await broker.wait_ready()
        bootstrap = broker.bootstrap_servers
    try:
        with tempfile.TemporaryDirectory(prefix="tranche-bench-exec-") as tmp:
            work = Path(tmp)
            async with AsyncExitStack() as stack:
                urls = {}
                for label in ("http", "wait", "old", "asgi"):
                    urls[label] = await stack.enter_async_context(scratch_database(dsn, label))
                say("starting three execution services (tranche serve) …")
                common: dict[str, Any] = {"max_batch_size": largest}
                http, wait, old = await asyncio.gather(
                    stack.enter_async_context(
                        served("http", urls["http"], bootstrap, work, publish_wait_ms=0, **common)
                    ),
                    stack.enter_async_context(
                        served("wait", urls["wait"], bootstrap, work, **common)
                    ),
                    stack.enter_async_context(
                        served(
                            "old",
                            urls["old"],
                            bootstrap,
                            work,
                            command=SERVE_SEQUENTIAL,
                            **common,
                        )
                    ),
                )
                asgi = await stack.enter_async_context(
                    in_process("asgi", urls["asgi"], bootstrap, work, publish_wait_ms=0, **common)
                )
                # As `tranche serve` does (core.service.run_server): the start-up heap is
                # left out of full collections, young ones are rarer.
                stack.callback(gc.set_threshold, *gc.get_threshold())
                settle_heap()
                stack.callback(gc.unfreeze)
                probes = {
                    name: await stack.enter_async_context(outbox_probe(urls[name]))
                    for name in ("http", "wait", "asgi")
                }
                floor = await Floor.connect(urls["asgi"])
                stack.push_async_callback(floor.close)
                new = {
                    "http": (http, probes["http"]),
                    "asgi": (asgi, probes["asgi"]),
                    "wait": (wait, probes["wait"]),
                }
                results["sizes"] = await size_samples(sizes, samples, floor, new, old, say)
            results["concurrency"] = []
            for c in clients:
                say(f"concurrency: {c} clients x {per_client} batches of {batch} …")
                results["concurrency"].append(
                    await pool_run(dsn, bootstrap, work, None, c, per_client, batch)
                )
            results["pools"] = []
            for size in pools:
                say(f"pool size {size}: {max(clients or [20])} clients …")
                results["pools"].append(
                    await pool_run(
                        dsn, bootstrap, work, size, max(clients or [20]), per_client, batch
                    )
                )
            results["inserts"] = []
            for gate in inserts:
                say(f"{gate} bulk inserts at once: {max(clients or [20])} clients …")
                results["inserts"].append(
                    await pool_run(
                        dsn,
                        bootstrap,
                        work,
                        None,
                        max(clients or [20]),
                        per_client,
                        batch,
                        max_concurrent_bulk_inserts=gate,
                    )
                )
            if profile:
                say("profiling the in-process bulk path …")
                async with scratch_database(dsn, "prof") as url:
                    n = max((s for s in sizes if s <= 1000), default=min(sizes))
                    results["profile"] = await _profile(url, bootstrap, work, n, profile_file)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    results["load_after"] = load_average()
    results["ratios"] = ratios(results["sizes"])
    return results


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{option}: comma-separated integers expected") from None
    if any(v < 1 for v in values):
        raise typer.BadParameter(f"{option}: values must be at least 1")
    return values


def register(app: typer.Typer) -> None:
    @app.command("execution")
    def execution_cmd(
        dsn: Annotated[
            str,
            typer.Option(help="PostgreSQL server: fresh databases are created there and dropped."),
        ] = "postgresql://postgres@127.0.0.1:5432/postgres",
        sizes: Annotated[str, typer.Option(help="Batch sizes (max 10 000).")] = "10,100,1000,5000",
        samples: Annotated[int, typer.Option(min=1, help="Requests per size and path.")] = 20,
        clients: Annotated[str, typer.Option(help="Concurrent clients per run.")] = "10,20",
        batches_per_client: Annotated[int, typer.Option(min=1)] = 3,
        batch: Annotated[
            int, typer.Option(min=1, max=10_000, help="Items per batch of the concurrent clients.")
        ] = 1000,
        pools: Annotated[
            str, typer.Option(help="Pool sizes to compare under load ('' to skip).")
        ] = "4,10,20",
        inserts: Annotated[
            str,
            typer.Option(
                help="EXECUTION_MAX_CONCURRENT_BULK_INSERTS values to compare ('' skips)."
            ),
        ] = "1,2,4,8",
        bootstrap: Annotated[
            str | None, typer.Option(help="Kafka bootstrap servers (default: embedded broker).")
        ] = None,
        profile: Annotated[bool, typer.Option(help="Profile the bulk path.")] = True,
        profile_file: Annotated[
            Path | None, typer.Option(help="Write the whole profile tree here.")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
        report: Annotated[
            bool, typer.Option(help="Write docs/benchmarks.md and the chart.")
        ] = True,
        quick: Annotated[
            bool,
            typer.Option(
                help="Issue 19's two ratios only: 1 000-item batches, 10 samples, no "
                "concurrency, pool, insert or profile runs, no report."
            ),
        ] = False,
    ) -> None:
        """Batch endpoint: old path vs bulk path vs the database floor, and concurrency."""
        if quick:
            sizes, samples, clients, pools, inserts = "1000", min(samples, 10), "", "", ""
            profile, report = False, False
        size_list = _ints(sizes, "--sizes")
        if not size_list or max(size_list) > 10_000:
            raise typer.BadParameter("--sizes: between 1 and 10 000 items")
        configure_logging("WARNING", json=False)
        say: Say = (lambda _m: None) if json_out else typer.echo
        # On uvloop, as the served processes: the floor and the in-process path run here.
        results = run_loop(
            run(
                dsn=dsn,
                sizes=size_list,
                samples=samples,
                clients=_ints(clients, "--clients"),
                per_client=batches_per_client,
                batch=batch,
                pools=_ints(pools, "--pools"),
                inserts=_ints(inserts, "--inserts"),
                bootstrap=bootstrap,
                profile=profile,
                profile_file=profile_file,
                say=say,
            )
        )
        if report:
            chart(results, Path("docs/benchmarks-execution.png"))
            write_section("execution", markdown(results))
        if json_out:
            typer.echo(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        else:
            typer.echo(markdown(results))


def main() -> None:
    """Entry point of ``python benchmarks/execution.py``."""
    app = typer.Typer(add_completion=False)
    register(app)
    app()
