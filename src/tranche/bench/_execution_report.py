"""The report of ``tranche bench execution``: markdown section, chart, profile by stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tranche.bench._report import machine_line

__all__ = ["chart", "markdown", "profile_stages", "ratios"]

#: Where a profiled request's time goes: the first frame on a call path whose function is
#: listed takes the time of everything below it.
_STAGES = {
    "parse_json": "parse the request JSON (exact decimals)",
    "validate_item": "validate the items",
    "tickers_for": "ticker lookup",
    "insert_rows": "execution rows: reserve ids + COPY",
    "enqueue_many": "outbox rows: build + COPY",
    "order_events": "render each event's JSON",
    "new_dto": "build the DTOs",
    "transaction": "session, BEGIN, COMMIT",
    "_await_sent": "publish wait",
    "dumps": "render the response JSON",
}


def profile_stages(session: Any, requests: int, n: int) -> dict[str, Any]:
    """Per-request milliseconds by stage from a pyinstrument session."""
    totals = dict.fromkeys(_STAGES.values(), 0.0)
    root = session.root_frame()

    def walk(frame: Any) -> None:
        label = _STAGES.get(frame.function)
        if label is not None and "tranche" in (frame.file_path or ""):
            totals[label] += frame.time
            return
        for child in frame.children:
            walk(child)

    if root is not None:
        walk(root)
    total = session.duration
    stages = [{"stage": k, "ms": round(v * 1000 / requests, 2)} for k, v in totals.items()]
    rest = total - sum(totals.values())
    stages.append(
        {
            "stage": "everything else (HTTP, middleware, routing, answer assembly)",
            "ms": round(rest * 1000 / requests, 2),
        }
    )
    return {
        "requests": requests,
        "n": n,
        "total_ms": round(total * 1000 / requests, 2),
        "stages": stages,
    }


def ratios(sizes: list[dict[str, Any]]) -> dict[str, float]:
    """Issue 19's figures for the execution service, from the sizes run: at 1 000 items
    (or the largest size below), the bulk path over HTTP against the COPY floor, answering
    at commit and with the default publish wait."""
    below = [r for r in sizes if r["n"] <= 1000] or sizes
    if not below:
        return {}
    row = max(below, key=lambda r: r["n"])
    return {
        "items": row["n"],
        "bulk_http_over_floor": row["new_over_floor"],
        "bulk_http_publish_wait_over_floor": row["new_wait_over_floor"],
        "bulk_in_process_over_floor": row["new_asgi_over_floor"],
        "bulk_http_over_floor_with_outbox_rows": row["new_over_floor_outbox"],
        "original_over_bulk": row["old_over_new"],
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _sizes_table(sizes: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| items | floor (asyncpg COPY) | floor + outbox rows | bulk, HTTP | bulk, in-process "
        "| bulk + publish wait, HTTP | original path, HTTP | bulk / floor "
        "| bulk / floor + outbox | original / bulk |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sizes:
        cells = [
            f"{_ms(r['floor_p50_ms'])} / {_ms(r['floor_p95_ms'])}",
            f"{_ms(r['floor_outbox_p50_ms'])} / {_ms(r['floor_outbox_p95_ms'])}",
            f"{_ms(r['new_p50_ms'])} / {_ms(r['new_p95_ms'])}",
            f"{_ms(r['new_asgi_p50_ms'])} / {_ms(r['new_asgi_p95_ms'])}",
            f"{_ms(r['new_wait_p50_ms'])} / {_ms(r['new_wait_p95_ms'])}",
            f"{_ms(r['old_p50_ms'])} / {_ms(r['old_p95_ms'])}",
            f"**{r['new_over_floor']:.2f}x**",
            f"{r['new_over_floor_outbox']:.2f}x",
            f"**{r['old_over_new']:.1f}x**",
        ]
        lines.append(f"| {r['n']:,} | " + " | ".join(cells) + " |")
    return lines


def _verdicts(results: dict[str, Any]) -> list[str]:
    out = []
    thousand = next((r for r in results["sizes"] if r["n"] == 1000), None)
    if thousand is not None:
        nf, on = thousand["new_over_floor"], thousand["old_over_new"]
        out.append(
            f"- 1 000 items: bulk / floor **{nf:.2f}x** (target ≤ 2.5: "
            f"{'met' if nf <= 2.5 else 'missed'}), original / bulk **{on:.1f}x** (target ≥ 20: "
            f"{'met' if on >= 20 else 'missed'}). With the default publish wait the bulk "
            f"path answers in {_ms(thousand['new_wait_p50_ms'])} ms "
            f"({thousand['new_wait_over_floor']:.2f}x the floor, "
            f"{thousand['old_over_new_wait']:.1f}x faster than the original). Against the "
            "floor of a transactional outbox — the same COPY plus one outbox row per "
            "execution in the same transaction, "
            f"{_ms(thousand['floor_outbox_p50_ms'])} ms — the bulk path is "
            f"{thousand['new_over_floor_outbox']:.2f}x."
        )
    ten = next((r for r in results["concurrency"] if r["clients"] == 10), None)
    if ten is not None:
        ok = ten["errors"] == 0 and ten["drain_ms"] <= 1000
        out.append(
            f"- 10 clients: {ten['errors']} errors, outbox backlog back to 0 "
            f"{_ms(ten['drain_ms'])} ms after the last response (target: 0 errors, ≤ 1 s: "
            f"{'met' if ok else 'missed'})."
        )
    return out


def _per_client(results: dict[str, Any]) -> str:
    runs = results["concurrency"]
    if not runs:
        return "—"
    return f"{runs[0]['batches'] // runs[0]['clients']} batches of {runs[0]['batch']:,}"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Execution service: batch endpoint — original path, bulk path, database floor",
        "",
        machine_line() + f" · load average {results['load_before']} before, "
        f"{results['load_after']} after",
        "",
        "`tranche bench execution` — fresh PostgreSQL databases, the embedded broker; "
        "`POST /api/v1/executions/batch` timed at the client, p50 / p95 in ms. *HTTP*: "
        "`tranche serve execution` (uvicorn) on loopback; *in-process*: the same app through "
        "httpx's ASGI transport. *bulk* answers at commit (`EXECUTION_PUBLISH_WAIT_MS=0`); "
        "*bulk + publish wait* is the default (200 ms), the answer waits for the broker's "
        "acks so `sentTimestamp` is filled. *original path*: the sequential writer "
        "(`tranche.bench._sequential_server`), one INSERT and one awaited Kafka send per "
        "item in one transaction. *floor*: the same rows with asyncpg alone (reserve ids, "
        "COPY, commit); *floor + outbox rows* adds, in the same transaction, a COPY of one "
        "outbox row per execution as the service writes it (value, headers, event id). The "
        "paths take turns; after each bulk request the bench "
        "waits for the outbox to drain, so every sample starts idle.",
        "",
        *_sizes_table(results["sizes"]),
        "",
        *_verdicts(results),
        "",
        "![batch latency by size](benchmarks-execution.png)",
        "",
        "### Concurrent clients",
        "",
        f"Each client posts {_per_client(results)} items one after another to a fresh "
        "service (new database) with its default settings (publish wait 200 ms, pool 10 + "
        "10, 2 bulk inserts at once, backlog limit 5 000). *commit → broker*: outbox "
        "row written in the chunk's transaction → `sent_timestamp` stamped once the broker "
        "acknowledged. *backlog 0 after*: from the last response until no outbox row is "
        "pending.",
        "",
        "| clients | batches | executions/s | errors | request p50 / p99 ms "
        "| commit → broker p50 / p99 ms | backlog 0 after (ms) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["concurrency"]:
        lines.append(
            f"| {r['clients']} | {r['batches']} | {r['executions_per_s']:,} | {r['errors']} | "
            f"{_ms(r['p50_request_ms'])} / {_ms(r['p99_request_ms'])} | "
            f"{_ms(r['p50_publish_ms'])} / {_ms(r['p99_publish_ms'])} | {_ms(r['drain_ms'])} |"
        )
    if results.get("pools"):
        lines += [
            "",
            "### Connection pool size under load",
            "",
            "The concurrency run with the largest client count at each `EXECUTION_DB_POOL_SIZE` "
            "(overflow 0), bulk inserts at once at their default.",
            "",
            "| pool | executions/s | errors | request p50 / p99 ms "
            "| commit → broker p50 / p99 ms | backlog 0 after (ms) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["pools"]:
            lines.append(
                f"| {r['pool_size']} | {r['executions_per_s']:,} | {r['errors']} | "
                f"{_ms(r['p50_request_ms'])} / {_ms(r['p99_request_ms'])} | "
                f"{_ms(r['p50_publish_ms'])} / {_ms(r['p99_publish_ms'])} | {_ms(r['drain_ms'])} |"
            )
    if results.get("inserts"):
        lines += [
            "",
            "### Bulk inserts at once",
            "",
            "The same run at each `EXECUTION_MAX_CONCURRENT_BULK_INSERTS` (default pool): "
            "chunk transactions at once across all requests of the process.",
            "",
            "| at once | executions/s | errors | request p50 / p99 ms "
            "| commit → broker p50 / p99 ms | backlog 0 after (ms) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["inserts"]:
            lines.append(
                f"| {r['max_concurrent_bulk_inserts']} | {r['executions_per_s']:,} | "
                f"{r['errors']} | {_ms(r['p50_request_ms'])} / {_ms(r['p99_request_ms'])} | "
                f"{_ms(r['p50_publish_ms'])} / {_ms(r['p99_publish_ms'])} | {_ms(r['drain_ms'])} |"
            )
    if results.get("profile"):
        p = results["profile"]
        lines += [
            "",
            f"### Where a {p['n']:,}-item request's time goes",
            "",
            f"pyinstrument over {p['requests']} in-process requests (relay off, publish wait "
            f"0): {_ms(p['total_ms'])} ms of samples a request. The profiler slows Python code "
            "more than waits on the database, and the request's two chunks run at once, so "
            "read the shares, not the sums. A stage's time includes its waits on the "
            "database.",
            "",
            "| stage | ms a request |",
            "|---|---:|",
            *(f"| {s['stage']} | {s['ms']:.1f} |" for s in p["stages"]),
        ]
    return "\n".join(lines)


def chart(results: dict[str, Any], path: Path) -> Path:
    """Latency (p50) against batch size: bulk path, original path, floor (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    xs = [r["n"] for r in sizes]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for key, label, style in (
        ("old_p50_ms", "original path (sequential), HTTP", "o-"),
        ("new_p50_ms", "bulk path, HTTP", "s-"),
        ("floor_p50_ms", "floor: asyncpg COPY", "^--"),
    ):
        ax.plot(xs, [r[key] for r in sizes], style, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("executions per batch request")
    ax.set_ylabel("p50 latency (ms)")
    ax.set_title("POST /api/v1/executions/batch on PostgreSQL")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
