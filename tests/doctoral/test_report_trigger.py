"""The report month from the admin API: ``POST /api/batch/jobs/monthlyReportJob/run?month=``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doctoral.factories import admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import auth, finished, serving


async def test_the_api_reports_on_the_month_asked_for(
    sqlite_databases: Databases, kafka_bootstrap: str, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    async with serving(sqlite_databases, kafka_bootstrap, reports_dir=reports) as (_app, client):
        r = await client.post(
            "/api/batch/jobs/monthlyReportJob/run?month=2025-02", headers=auth(admin_token())
        )
        assert r.status_code == 200, r.text
        body = await finished(client, r.json()["executionId"])
        assert body["status"] == "COMPLETED", body
        assert (reports / "rapport_2025_02.pdf").is_file()
        listed = (await client.get("/api/batch/reports", headers=auth(admin_token()))).json()
        assert [f["fileName"] for f in listed] == ["rapport_2025_02.pdf"]


@pytest.mark.parametrize(
    ("job", "month", "says"),
    [
        ("monthlyReportJob", "2025-13", "YYYY-MM"),
        ("monthlyReportJob", "février", "YYYY-MM"),
        ("tokenCleanupJob", "2025-02", "only monthlyReportJob"),
    ],
)
async def test_a_month_the_job_cannot_take_is_refused_naming_the_field(
    sqlite_databases: Databases,
    kafka_bootstrap: str,
    tmp_path: Path,
    job: str,
    month: str,
    says: str,
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap, reports_dir=tmp_path) as (_app, client):
        r = await client.post(
            f"/api/batch/jobs/{job}/run", params={"month": month}, headers=auth(admin_token())
        )
        assert r.status_code == 400, r.text
        assert says in r.json()["validationErrors"]["month"]
        executions = await client.get(
            f"/api/batch/jobs/{job}/executions", headers=auth(admin_token())
        )
        assert executions.json() == []
