"""``tranche bench doctoral --archives N`` archives every record and reports time and memory."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.servers import MARIADB_HOST, MARIADB_PASSWORD, MARIADB_PORT, MARIADB_USER
from tranche.bench._doctoral_archive import markdown, run_archives
from tranche.bench.doctoral import _timed


@pytest.mark.mariadb
async def test_archive_bench_archives_every_record(mariadb_factory: Any) -> None:
    auth = MARIADB_USER + (f":{MARIADB_PASSWORD}" if MARIADB_PASSWORD else "")
    server = f"mysql://{auth}@{MARIADB_HOST}:{MARIADB_PORT}"
    results = await run_archives(12, server, False, lambda _m: None, _timed)
    small, large = results["runs"]
    assert (small["items"], large["items"]) == (3, 12)
    assert large["seconds"] > 0 and large["peak_rss_mb"] > 0
    assert results["archive_bytes_total"] > 12 * results["bytes_per_record"]  # random: no gain
    assert "| archiveJob, 12 records | 12 |" in markdown(results)
