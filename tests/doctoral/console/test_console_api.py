"""What the console is served by: open static files, ROLE_ADMIN JSON, the sign-in relay.

Against the running service over loopback (no browser needed).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.doctoral.console.harness import PASSWORD, Service, tampered_audit_row, token

CONSOLE_API = [
    "/api/batch/console/history",
    "/api/batch/console/timeline",
    "/api/batch/console/anomalies",
    "/api/batch/console/audit",
]


def get(service: Service, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(service.url + path, timeout=30, **kw)


def test_the_static_files_need_no_token_and_forbid_foreign_content(service: Service) -> None:
    index = get(service, "/console/")
    assert index.status_code == 200
    assert index.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in index.headers["content-security-policy"]
    assert '<html lang="fr">' in index.text
    script = get(service, "/console/js/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert get(service, "/console", follow_redirects=False).headers["location"] == "/console/"


@pytest.mark.parametrize(
    "path",
    ["/console/nope.js", "/console/../pyproject.toml", "/console/%2e%2e/router.py", "/console/js"],
)
def test_only_shipped_files_are_served(service: Service, path: str) -> None:
    assert get(service, path).status_code == 404


@pytest.mark.parametrize("path", CONSOLE_API)
def test_console_data_needs_an_admin_token(service: Service, path: str) -> None:
    assert get(service, path).status_code == 401
    doctorant = {"Authorization": f"Bearer {token(['ROLE_DOCTORANT'])}"}
    assert get(service, path, headers=doctorant).status_code == 403
    assert service.api("GET", path).status_code == 200


def test_the_run_takes_a_month_for_the_monthly_report_only(service: Service) -> None:
    refused = service.api(
        "POST", "/api/batch/jobs/tokenCleanupJob/run", params={"month": "2026-01"}
    )
    assert refused.status_code == 400
    assert refused.json()["validationErrors"] == {"month": "only monthlyReportJob takes a month"}
    malformed = service.api(
        "POST", "/api/batch/jobs/monthlyReportJob/run", params={"month": "2026-13"}
    )
    assert malformed.status_code == 400
    assert "month" in malformed.text
    started = service.api(
        "POST", "/api/batch/jobs/monthlyReportJob/run", params={"month": "2025-11"}
    )
    assert started.status_code == 200
    service.wait_finished(started.json()["executionId"])
    names = [r["fileName"] for r in service.api("GET", "/api/batch/reports").json()]
    assert "rapport_2025_11.pdf" in names


def test_history_filters_pages_and_counts(service: Service) -> None:
    for _ in range(3):
        run = service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()
        service.wait_finished(run["executionId"])
    page = service.api(
        "GET", "/api/batch/console/history", params={"job": "tokenCleanupJob", "size": 2}
    )
    total = int(page.headers["X-Total-Count"])
    assert total >= 3
    assert len(page.json()) == 2
    assert {e["jobName"] for e in page.json()} == {"tokenCleanupJob"}
    ids = [e["executionId"] for e in page.json()]
    assert ids == sorted(ids, reverse=True)
    failed = service.api("GET", "/api/batch/console/history", params={"status": "FAILED"})
    assert failed.json() == []
    assert failed.headers["X-Total-Count"] == "0"
    bad = service.api("GET", "/api/batch/console/history", params={"status": "SOMETIMES"})
    assert bad.status_code == 400
    unknown = service.api("GET", "/api/batch/console/history", params={"job": "nopeJob"})
    assert unknown.status_code == 404
    assert "nopeJob" in unknown.json()["message"]
    days = service.api("GET", "/api/batch/console/timeline").json()
    assert sum(d["executions"] for d in days) >= total
    assert all(0 <= d["successRate"] <= 100 for d in days)


def test_the_anomalies_are_those_of_the_last_consistency_run(service: Service) -> None:
    run = service.api("POST", "/api/batch/jobs/dataConsistencyJob/run").json()
    service.wait_finished(run["executionId"])
    last = service.api("GET", "/api/batch/console/anomalies").json()
    assert last["executionId"] == run["executionId"]
    assert last["dryRun"] is False
    assert last["report"].startswith("anomaly_report_")
    by_check = {c["check"]: c for c in last["checks"]}
    defenses = by_check["soutenanceSansInscription"]
    assert defenses["manual"] == len(defenses["records"]) > 0
    assert all(not r["corrected"] for r in defenses["records"])


def test_password_sign_in_is_relayed_to_user_service(service: Service) -> None:
    assert get(service, "/console/config.json").json() == {"passwordLogin": True}
    good = httpx.post(
        service.url + "/console/login",
        json={"email": "admin@univ.fr", "password": PASSWORD},
        timeout=30,
    )
    assert good.status_code == 200
    jwt = good.json()["token"]
    ok = get(service, "/api/batch/jobs", headers={"Authorization": f"Bearer {jwt}"})
    assert ok.status_code == 200
    bad = httpx.post(
        service.url + "/console/login", json={"email": "admin@univ.fr", "password": "x"}, timeout=30
    )
    assert bad.status_code == 401
    assert "x" not in bad.json()["message"]
    empty = httpx.post(service.url + "/console/login", json={"email": "admin@univ.fr"}, timeout=30)
    assert empty.status_code == 400
    assert "password" in empty.text


def test_a_tampered_audit_row_shows_as_a_broken_chain(service: Service) -> None:
    before = service.api("GET", "/api/batch/console/audit", params={"size": 5}).json()
    assert before["verification"]["ok"] is True
    assert before["total"] == before["verification"]["rows"] > 0
    assert len(before["entries"]) == 5
    assert before["entries"][0]["seq"] == before["total"]
    with tampered_audit_row(service, 2):
        after = service.api("GET", "/api/batch/console/audit").json()["verification"]
    assert after["ok"] is False
    assert after["brokenSeq"] == 2
    assert after["reason"] == "row content does not match its hash"
    # Put back as it was, the chain verifies again.
    again = service.api("GET", "/api/batch/console/audit").json()["verification"]
    assert again["ok"] is True
