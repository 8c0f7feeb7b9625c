"""``tranche bench doctoral --report-month`` at a small size: it runs and reports what it says."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.servers import MARIADB_HOST, MARIADB_PASSWORD, MARIADB_PORT, MARIADB_USER
from tranche.bench._doctoral_report import markdown, run


@pytest.mark.mariadb
async def test_report_bench_times_the_job_and_the_pdf(mariadb_factory: Any) -> None:
    auth = MARIADB_USER + (f":{MARIADB_PASSWORD}" if MARIADB_PASSWORD else "")
    results = await run(60, f"mysql://{auth}@{MARIADB_HOST}:{MARIADB_PORT}", False, lambda _m: None)
    assert results["job"]["items"] == 60  # enrollments created in the reported month
    assert 0 < results["pdf_seconds"] <= results["job"]["seconds"]
    assert results["pdf_bytes"] > 10_000 and results["job"]["peak_rss_mb"] > 0
    assert "| monthlyReportJob | 60 |" in markdown(results)
