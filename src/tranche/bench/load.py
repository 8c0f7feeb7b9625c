"""``tranche bench load``: the execution service under sustained load, and the trade
service submitting through it, both as real ``tranche serve`` processes.

On scratch PostgreSQL databases (created and dropped here) and the embedded Tansu
broker, on loopback:

1. **clients** — for each ``--clients`` count, that many httpx clients post
   ``--batch``-item batches back to back to ``tranche serve execution`` for
   ``--warmup`` seconds (not counted), then for ``--duration`` seconds: executions
   and requests per second, p50/p99 request latency, errors (any answer but 201
   with every item created), and the server's RSS when the warm-up ended and at the
   end. The outbox is drained before the next count starts.
2. **trade** — ``--trade-executions`` trade orders, and ``tranche serve trade``
   pointed at the same execution service; ``--trade-clients`` clients ask it to
   submit them, 100 per request (``POST /api/v1/tradeOrders/batch/submit``), all at
   once. Every trade-side execution must end SENT with the execution service's id,
   and that id must be a row of the execution service carrying ours back.
3. **broker** — the service's topic read back from the start: every execution
   created in 1 and 2 must be there exactly once (by key), no event id twice.

Memory counts as flat when RSS at the end of a run is at most ``--flat-mib`` above
RSS when its warm-up ended (allocator arenas and caches fill during the warm-up;
a leak keeps growing with the requests served). The command exits 1 when an
error, a lost or duplicated event, an unrecorded execution or growth above that
bound was seen.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from tranche.bench._execution_load import outbox_probe, scratch_database, served
from tranche.bench._load_clients import load_average, post_for, read_topic, rss_watch
from tranche.bench._load_trade import (
    SUBMISSIONS_PER_REQUEST,
    recorded,
    seed_orders,
    served_trade,
    submit_all,
)
from tranche.bench.submit import scratch_postgres
from tranche.core.broker import EmbeddedBroker
from tranche.core.logging import configure_logging
from tranche.core.migrations import upgrade

__all__ = ["failures", "markdown", "register", "run"]

Say = Callable[[str], None]
DEFAULT_FLAT_MIB = 32.0


async def _clients_phase(
    target: Any,
    watch: Any,
    probe: Any,
    counts: Sequence[int],
    duration_s: float,
    warmup_s: float,
    batch: int,
    accepted: dict[str, set[int]],
    say: Say,
) -> list[dict[str, Any]]:
    rows = []
    for clients in counts:
        say(f"{clients} clients: {warmup_s:g} s warm-up, then {duration_s:g} s …")
        ids = accepted.setdefault(f"clients_{clients}", set())
        row = await post_for(target, watch, clients, duration_s, warmup_s, batch, ids)
        row["drain_s"] = round(await probe.drained(timeout_s=300), 2)
        rows.append(row)
    return rows


async def _trade_phase(
    stack: AsyncExitStack,
    postgres: str,
    execution_url: str,
    execution_base: str,
    execution_watch: Any,
    probe: Any,
    work: Path,
    n: int,
    clients: int,
    accepted: dict[str, set[int]],
    say: Say,
) -> dict[str, Any]:
    trade_url = await stack.enter_async_context(scratch_postgres(postgres, "loadtrade"))
    await upgrade("trade", trade_url)
    say(f"trade: {n} trade orders, then tranche serve trade …")
    # The warm-up: one request of 100 per client, all at once (pools and buffers fill).
    warmup = clients * SUBMISSIONS_PER_REQUEST
    orders = await seed_orders(trade_url, n + warmup, first_order_id=1)
    trade = await stack.enter_async_context(served_trade(trade_url, execution_base, work))
    watches = {
        "execution": execution_watch,
        "trade": await stack.enter_async_context(rss_watch(trade.pid)),
    }
    warm = await submit_all(trade, orders[:warmup], clients)
    rss_start = {k: w.now_mib() for k, w in watches.items()}
    say(f"trade: {n} executions submitted by {clients} clients at once …")
    began, cpu = time.monotonic(), {k: w.cpu_s() for k, w in watches.items()}
    row = await submit_all(trade, orders[warmup:], clients)
    mid = began + row["seconds"] / 2
    # Which process the submissions waited for: each one's CPU share of the wall time.
    row["cpu_share"] = {
        k: round((w.cpu_s() - cpu[k]) / row["seconds"], 2) for k, w in watches.items()
    }
    row["rss_mid_mib"] = {k: round(w.at_mib(mid), 1) for k, w in watches.items()}
    rss_end = {k: w.now_mib() for k, w in watches.items()}
    row["warmup"] = warmup
    row["warmup_errors"] = warm["errors"]
    row["drain_s"] = round(await probe.drained(timeout_s=300), 2)
    counts, service_ids = await recorded(trade_url, execution_url)
    row.update(counts)
    accepted["trade"] = service_ids
    row["rss_start_mib"] = {k: round(v, 1) for k, v in rss_start.items()}
    row["rss_end_mib"] = {k: round(v, 1) for k, v in rss_end.items()}
    row["load"] = load_average()
    return row


async def run(
    *,
    postgres: str,
    clients: Sequence[int],
    duration_s: float,
    warmup_s: float,
    batch: int,
    trade_executions: int,
    trade_clients: int,
    flat_mib: float = DEFAULT_FLAT_MIB,
    bootstrap: str | None = None,
    say: Say = print,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "load_before": load_average(),
        "cpus": os.cpu_count(),
        "batch": batch,
        "flat_mib": flat_mib,
    }
    accepted: dict[str, set[int]] = {}
    name = f"load{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        if bootstrap is None:
            broker = EmbeddedBroker()
            await asyncio.to_thread(broker.start)
            stack.push_async_callback(asyncio.to_thread, broker.stop)
            await broker.wait_ready()
            bootstrap = broker.bootstrap_servers
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tranche-load-")))
        url = await stack.enter_async_context(scratch_database(postgres, "load"))
        say("starting tranche serve execution …")
        target = await stack.enter_async_context(
            served(name, url, bootstrap, work, max_batch_size=max(batch, 100))
        )
        assert target.pid is not None
        watch = await stack.enter_async_context(rss_watch(target.pid))
        probe = await stack.enter_async_context(outbox_probe(url))
        results["rss_ready_mib"] = round(watch.now_mib(), 1)
        results["clients"] = await _clients_phase(
            target, watch, probe, clients, duration_s, warmup_s, batch, accepted, say
        )
        if trade_executions:
            base = str(target.client.base_url).rstrip("/")
            results["trade"] = await _trade_phase(
                stack, postgres, url, base, watch, probe, work, trade_executions,
                trade_clients, accepted, say,
            )  # fmt: skip
        results["rss_final_mib"] = round(watch.now_mib(), 1)
        everything = set().union(*accepted.values())
        say(f"reading {len(everything)} events back from the broker …")
        topic = await read_topic(bootstrap, f"bench.orders.{name}", len(everything))
    results["broker"] = {
        "records": topic.records,
        "duplicate_event_ids": topic.duplicate_event_ids(),
        **{part: topic.check(ids) for part, ids in accepted.items()},
    }
    results["load_after"] = load_average()
    results["failures"] = failures(results)
    return results


def failures(results: dict[str, Any]) -> list[str]:
    """What the run saw that must not happen: errors, lost or repeated events,
    executions without their outcome, memory growing past the bound."""
    out = []
    bound = results["flat_mib"]
    for row in results["clients"]:
        what = f"{row['clients']} clients"
        if row["errors"] or row["warmup_errors"]:
            out.append(
                f"{what}: {row['errors']} errors ({row['warmup_errors']} in the warm-up), "
                f"e.g. {row['error_sample'][:1]}"
            )
        if row["rss_end_mib"] > row["rss_start_mib"] + bound:
            out.append(f"{what}: RSS {row['rss_start_mib']} → {row['rss_end_mib']} MiB")
    trade = results.get("trade")
    if trade:
        if trade["errors"] or trade["warmup_errors"]:
            out.append(f"trade: {trade['errors']} errors, e.g. {trade['error_sample'][:1]}")
        total = trade["orders"] + trade["warmup"]
        for key in ("trade_executions", "sent_with_service_id", "matched_in_execution_service"):
            if trade[key] != total:
                out.append(f"trade: {key} {trade[key]} of {total}")
        for proc, start in trade["rss_start_mib"].items():
            if trade["rss_end_mib"][proc] > start + bound:
                out.append(f"trade: {proc} RSS {start} → {trade['rss_end_mib'][proc]} MiB")
    broker = results["broker"]
    if broker["duplicate_event_ids"]:
        out.append(f"broker: {broker['duplicate_event_ids']} event ids seen twice")
    for part, check in broker.items():
        if isinstance(check, dict) and (check["missing"] or check["duplicated"]):
            out.append(f"broker: {part}: {check['missing']} missing, {check['duplicated']} twice")
    return out


def markdown(results: dict[str, Any], command: str) -> str:
    lines = [
        f"`{command}` — load average {results['load_before']} before, "
        f"{results['load_after']} after, {results['cpus']} CPUs; batches of "
        f"{results['batch']}; RSS of the `tranche serve execution` process.",
        "",
        "| clients | duration (s) | requests | executions | executions/s | requests/s "
        "| p50 (ms) | p99 (ms) | errors | events delivered once | RSS start → mid → end (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["clients"]:
        check = results["broker"][f"clients_{r['clients']}"]
        lines.append(
            f"| {r['clients']} | {r['duration_s']:.1f} | {r['requests']:,} | "
            f"{r['executions']:,} | {r['executions_per_s']:,.0f} | {r['requests_per_s']:,.0f} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['errors']} | "
            f"{check['delivered_once']:,} / {check['accepted']:,} | "
            f"{r['rss_start_mib']:.1f} → {r['rss_mid_mib']:.1f} → {r['rss_end_mib']:.1f} |"
        )
    trade = results.get("trade")
    if trade:
        check = results["broker"]["trade"]
        s, m, e = trade["rss_start_mib"], trade["rss_mid_mib"], trade["rss_end_mib"]
        lines += [
            "",
            "| trade service | clients | seconds | executions/s | p50 / p99 (ms) | errors "
            "| recorded SENT, matched | events delivered once | RSS start → mid → end: trade; "
            "execution (MiB) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {trade['orders']:,} executions, {trade['requests']} requests of 100 "
            f"(after {trade['warmup']:,} in the warm-up) | "
            f"{trade['clients']} | {trade['seconds']:.1f} | {trade['executions_per_s']:,.0f} | "
            f"{trade['p50_ms']} / {trade['p99_ms']} | {trade['errors']} | "
            f"{trade['sent_with_service_id']:,}, {trade['matched_in_execution_service']:,} | "
            f"{check['delivered_once']:,} / {check['accepted']:,} | "
            f"{s['trade']:.1f} → {m['trade']:.1f} → {e['trade']:.1f}; "
            f"{s['execution']:.1f} → {m['execution']:.1f} → {e['execution']:.1f} |",
        ]
    broker = results["broker"]
    found = "; ".join(results["failures"]) or "none"
    lines += [
        "",
        f"Broker: {broker['records']:,} records, {broker['duplicate_event_ids']} event ids "
        f"twice. Flat: end ≤ start + {results['flat_mib']:g} MiB. "
        f"Failures: {found}.",
    ]
    return "\n".join(lines)


def _ints(value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"--clients: {value!r} is not a list of numbers") from exc
    if not out or min(out) < 1:
        raise typer.BadParameter("--clients: at least one count, each ≥ 1")
    return out


def register(app: typer.Typer) -> None:
    @app.command("load")
    def load_cmd(
        clients: Annotated[str, typer.Option(help="Concurrent client counts, in turn.")] = "10,50",
        duration: Annotated[float, typer.Option(min=0.5, help="Measured seconds per count.")] = 60,
        warmup: Annotated[float, typer.Option(min=0, help="Unmeasured seconds first.")] = 5,
        batch: Annotated[int, typer.Option(min=1, max=10_000, help="Items per batch.")] = 100,
        trade_executions: Annotated[
            int, typer.Option(min=0, help="Executions the trade service submits (0 skips).")
        ] = 10_000,
        trade_clients: Annotated[
            int, typer.Option(min=1, help="Clients asking the trade service at once.")
        ] = 10,
        flat_mib: Annotated[
            float, typer.Option(min=0, help="Most RSS growth (MiB) counted as flat.")
        ] = DEFAULT_FLAT_MIB,
        postgres: Annotated[
            str, typer.Option(help="PostgreSQL server for the scratch databases.")
        ] = "postgresql://postgres@127.0.0.1:5432/postgres",
        bootstrap: Annotated[
            str | None, typer.Option(help="Kafka bootstrap servers (default: embedded broker).")
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    ) -> None:
        """The execution service under N clients for a bounded time, and the trade service
        submitting through it: throughput, latency, errors, RSS, every event once."""
        configure_logging("WARNING", json=False)
        say: Say = (lambda _m: None) if json_out else typer.echo
        results = asyncio.run(
            run(
                postgres=postgres,
                clients=_ints(clients),
                duration_s=duration,
                warmup_s=warmup,
                batch=batch,
                trade_executions=trade_executions,
                trade_clients=trade_clients,
                flat_mib=flat_mib,
                bootstrap=bootstrap,
                say=say,
            )
        )
        command = (
            f"tranche bench load --clients {clients} --duration {duration:g} "
            f"--warmup {warmup:g} --batch {batch} --trade-executions {trade_executions}"
        )
        if json_out:
            typer.echo(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
        else:
            typer.echo(markdown(results, command))
        if results["failures"]:
            raise typer.Exit(1)
