"""Load on the real servers: ``tranche serve execution`` under 10 and 50 concurrent
clients, and ``tranche serve trade`` submitting executions through it.

Both are child processes on scratch PostgreSQL databases, publishing to the embedded
broker; the run is ``tranche.bench.load`` (also ``tranche bench load``). What is
asserted is what a user of the services would notice: no request refused or failed,
every created execution's event on the topic exactly once, every trade-side execution
recorded SENT with the execution service's id. Throughput and latency are reported
(``FIGURE`` lines, docs/reliability.md "Load"), never asserted.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.fixtures.servers import PG_ADMIN, unavailable
from tranche.bench.load import run
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def _load(broker: EmbeddedBroker, **options: Any) -> dict[str, Any]:
    try:
        await (await asyncpg.connect(PG_ADMIN, timeout=5)).close()
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable("PostgreSQL", exc)
    results = await run(
        postgres=PG_ADMIN, bootstrap=broker.bootstrap_servers, say=lambda _m: None, **options
    )
    for row in results["clients"]:
        print(
            f"FIGURE load clients={row['clients']} seconds={row['duration_s']} "
            f"requests={row['requests']} executions_per_s={row['executions_per_s']} "
            f"requests_per_s={row['requests_per_s']} p50_ms={row['p50_ms']} "
            f"p99_ms={row['p99_ms']} errors={row['errors']} "
            f"rss_mib={row['rss_start_mib']}->{row['rss_mid_mib']}->{row['rss_end_mib']} "
            f"server_cpu_share={row['server_cpu_share']} load={row['load']}"
        )
    trade = results["trade"]
    print(
        f"FIGURE load-trade executions={trade['orders']} clients={trade['clients']} "
        f"seconds={trade['seconds']} executions_per_s={trade['executions_per_s']} "
        f"p50_ms={trade['p50_ms']} p99_ms={trade['p99_ms']} errors={trade['errors']} "
        f"recorded={trade['sent_with_service_id']} rss_mib={trade['rss_start_mib']}->"
        f"{trade['rss_mid_mib']}->{trade['rss_end_mib']} broker={results['broker']} "
        f"load={results['load_before']}->{results['load_after']}"
    )
    return results


def _assert_nothing_lost(results: dict[str, Any], trade_executions: int) -> None:
    for row in results["clients"]:
        assert row["errors"] == 0 and row["warmup_errors"] == 0, row["error_sample"]
        assert row["requests"] >= row["clients"]  # each client was answered in the window
        assert row["rss_start_mib"] > 0 and row["rss_end_mib"] > 0
    trade = results["trade"]
    assert trade["errors"] == 0 and trade["warmup_errors"] == 0, trade["error_sample"]
    # The measured submissions and the warm-up's request of 100 per client.
    everything = trade_executions + trade["warmup"]
    assert trade["submitted"] == trade_executions
    assert trade["trade_executions"] == everything
    assert trade["sent_with_service_id"] == everything
    assert trade["matched_in_execution_service"] == everything
    assert trade["rss_start_mib"]["trade"] > 0 and trade["rss_end_mib"]["execution"] > 0
    broker = results["broker"]
    assert broker["duplicate_event_ids"] == 0
    for part in ("clients_10", "clients_50", "trade"):
        check = broker[part]
        assert check["accepted"] > 0
        assert check["delivered_once"] == check["accepted"], (part, check)
    assert broker["records"] == sum(
        broker[p]["accepted"] for p in ("clients_10", "clients_50", "trade")
    )


@pytest.mark.timeout(300)  # two services start on a shared 2-core machine
async def test_short_load_every_request_answered_every_event_once(broker: EmbeddedBroker) -> None:
    results = await _load(
        broker,
        clients=[10, 50],
        duration_s=1,
        warmup_s=0,
        batch=100,
        trade_executions=500,
        trade_clients=5,
    )
    _assert_nothing_lost(results, 500)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_long_load_no_errors_nothing_lost_memory_flat(broker: EmbeddedBroker) -> None:
    results = await _load(
        broker,
        clients=[10, 50],
        duration_s=60,
        warmup_s=5,
        batch=100,
        trade_executions=10_000,
        trade_clients=10,
    )
    _assert_nothing_lost(results, 10_000)
    assert results["failures"] == []  # includes RSS end ≤ start + flat_mib for every run
