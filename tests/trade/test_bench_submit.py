"""``tranche bench submit`` runs end to end and reports what it promises (no timing asserted)."""

from __future__ import annotations

import pytest

from tests.fixtures.servers import PG_ADMIN
from tranche.bench.submit import markdown, run

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


async def test_a_small_run_sends_everything_and_reports_each_path() -> None:
    results = await run(
        20, [1, 10], in_flight=2, postgres=PG_ADMIN, bootstrap=None, say=lambda _m: None
    )
    assert set(results) >= {"single_per_s", "bulk_per_s", "ratio", "by_batch_size", "peak_rss_mb"}
    assert [r["batch_size"] for r in results["by_batch_size"]] == [1, 10]
    assert [r["requests"] for r in results["by_batch_size"]] == [20, 2]
    assert all(r["sent"] == 20 for r in [results["single"], *results["by_batch_size"]])
    assert results["bulk_batch_size"] == 10
    assert results["peak_rss_mb"] > 0
    assert "| bulk | 10 | 2 |" in markdown(results)
    # The trade side's bulk path beside the execution service's own batch throughput.
    assert results["direct"]["sent"] == 20
    assert results["direct"]["batch_size"] == 10
    assert results["bulk_over_direct"] == round(results["bulk_per_s"] / results["direct_per_s"], 2)
    assert "own batch throughput" in markdown(results)
