"""``tranche bench doctoral`` runs end to end at a small size and reports what the issue names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.servers import MARIADB_HOST, MARIADB_PASSWORD, MARIADB_PORT, MARIADB_USER
from tranche.bench.doctoral import markdown, run


@pytest.mark.mariadb
async def test_bench_reports_jobs_floors_and_rss(mariadb_factory: Any) -> None:
    auth = MARIADB_USER + (f":{MARIADB_PASSWORD}" if MARIADB_PASSWORD else "")
    server = f"mysql://{auth}@{MARIADB_HOST}:{MARIADB_PORT}"
    results = await run(400, 90, server, 0.5, False, lambda _m: None, large_chunk=500)
    jobs = {j["name"]: j for j in results["jobs"]}
    assert set(jobs) == {"tokenCleanupJob", "dureeDoctoratAlertJob"}
    assert jobs["tokenCleanupJob"]["items"] == 200  # half of 400 tokens expired
    assert jobs["dureeDoctoratAlertJob"]["items"] == 90
    for job in results["jobs"]:
        assert set(job) == {"name", "items", "seconds", "items_per_s", "peak_rss_mb"}
        assert job["seconds"] > 0 and job["peak_rss_mb"] > 0
    assert results["variants"][0]["items"] == 200
    assert "| tokenCleanupJob |" in markdown(results)
    # The alert job's write floor: its rows again, one raw transaction per chunk of 50.
    floors = {f["name"]: f for f in results["floors"]}
    chunked = "same rows, raw SQL, one transaction per chunk of 50 (write floor)"
    assert floors[chunked]["items"] == 90 and floors[chunked]["seconds"] > 0
    write = results["alert_write_floor"]
    assert write["chunks"] == 2 and write["statements"] >= 2 * 3  # two chunks, 3 INSERTs each
    assert write["job_over_chunked"] > 0 and "second floor" in markdown(results)


@pytest.mark.mariadb
async def test_consistency_bench_finds_the_planted_faults(mariadb_factory: Any) -> None:
    from tranche.bench import _doctoral_consistency as dc

    auth = MARIADB_USER + (f":{MARIADB_PASSWORD}" if MARIADB_PASSWORD else "")
    server = f"mysql://{auth}@{MARIADB_HOST}:{MARIADB_PORT}"
    results = await dc.run(300, 100, server, False, lambda _m: None)
    counts = results["counts"]
    assert counts["anomalies.utilisateurInexistant.corrected"] == 3
    assert counts["anomalies.fichiersOrphelins.corrected"] == 10
    assert counts["anomalies.notificationsEnAttente.corrected"] == 200
    assert counts["anomalies.soutenanceSansInscription.manual"] == 3
    first, second = results["runs"]
    assert first["seconds"] > 0 and second["peak_rss_mb"] > 0
    assert "| dataConsistencyJob, second run (clean) |" in dc.markdown(results)
