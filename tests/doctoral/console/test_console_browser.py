"""The console in headless chromium, against the running service: what an admin does with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.doctoral.console.browsing import (
    expect,
    finished_execution,
    go_to,
    job_row,
    shoot,
    sign_in,
    status_of,
)
from tests.doctoral.console.harness import (
    Service,
    tampered_audit_row,
)


def test_an_admin_runs_a_job_watches_it_complete_and_finds_it_in_the_history(
    page: Any, service: Service
) -> None:
    sign_in(page, service)
    expect(job_row(page, "tokenCleanupJob")).to_contain_text("Tous les jours à 02:00")
    expect(job_row(page, "tokenCleanupJob")).to_contain_text("0 0 2 * * ?")
    job_row(page, "tokenCleanupJob").get_by_role("button", name="Lancer tokenCleanupJob").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Lancer tokenCleanupJob ?")
    dialog.get_by_role("button", name="Lancer maintenant").click()
    execution_id = finished_execution(page)
    expect(page.get_by_role("table", name="Compteurs des étapes (lots validés)")).to_contain_text(
        "cleanupRefreshTokensStep"
    )
    expect(page.locator("#progress-text")).to_contain_text("100")
    assert service.wait_finished(execution_id)["status"] == "COMPLETED"

    page.get_by_role("link", name="Historique").first.click()
    page.get_by_label("Traitement").select_option("tokenCleanupJob")
    page.get_by_label("État").select_option("COMPLETED")
    page.get_by_role("button", name="Filtrer").click()
    expect(page).to_have_url(re.compile(r"status=COMPLETED"))
    expect(page.locator("#page")).not_to_have_attribute("aria-busy", "true")
    link = page.get_by_role("link", name=f"n° {execution_id}", exact=True)
    link.click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"Exécution n° {execution_id}")


def test_the_monthly_report_of_a_chosen_month_is_listed_and_downloaded(
    page: Any, service: Service, tmp_path: Path
) -> None:
    sign_in(page, service)
    job_row(page, "monthlyReportJob").get_by_role("button").click()
    page.get_by_label("Mois du rapport (facultatif)").fill("2026-01")
    page.get_by_role("button", name="Lancer maintenant").click()
    finished_execution(page)

    page.get_by_role("link", name="Rapports").click()
    row = page.locator('tr[data-report="rapport_2026_01.pdf"]')
    expect(row).to_contain_text("Rapport mensuel")
    with page.expect_download() as download_info:
        row.get_by_role("button", name="Télécharger rapport_2026_01.pdf").click()
    download = download_info.value
    assert download.suggested_filename == "rapport_2026_01.pdf"
    saved = tmp_path / "report.pdf"
    download.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")


def test_the_audit_log_shows_the_runs_and_whether_its_chain_holds(
    page: Any, service: Service
) -> None:
    service.wait_finished(
        service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    )
    sign_in(page, service)
    page.get_by_role("link", name="Journal d'audit").click()
    expect(page.locator("#chain-result")).to_contain_text("Chaîne intègre")
    entries = page.get_by_role("table", name="Entrées, les plus récentes d'abord")
    expect(entries).to_contain_text("MANUAL_TRIGGER")
    # Read-only: nothing on the page can change an entry.
    expect(page.locator("#page").get_by_role("button")).to_have_text(
        ["Page précédente", "Page suivante"]
    )
    with tampered_audit_row(service, 1):
        go_to(page, "#/jobs")
        expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()
        page.get_by_role("link", name="Journal d'audit").click()
        verdict = page.get_by_role("alert")
        expect(verdict).to_contain_text("Chaîne rompue")
        expect(verdict).to_contain_text(
            "à l'entrée n° 1 : son contenu ne correspond plus à son empreinte (entrée modifiée)"
        )


PAGES = [
    ("jobs", "#/jobs", "Traitements"),
    ("history", "#/history", "Historique des exécutions"),
    ("stats", "#/stats", "Statistiques globales"),
    ("reports", "#/reports", "Rapports"),
    ("anomalies", "#/anomalies", "Anomalies de la dernière vérification de cohérence"),
    ("audit", "#/audit", "Journal d'audit"),
]


def test_every_page_renders_in_french_without_errors(
    page: Any, service: Service, tmp_path: Path
) -> None:
    """Also the screenshots of docs/doctoral.md (CONSOLE_SCREENSHOTS_DIR=docs/img to refresh)."""
    report = service.api("POST", "/api/batch/jobs/monthlyReportJob/run").json()["executionId"]
    service.wait_finished(report)
    check = service.api("POST", "/api/batch/jobs/dataConsistencyJob/run").json()["executionId"]
    service.wait_finished(check)
    page.goto(service.url + "/console/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    shoot(page, tmp_path, "login")
    sign_in(page, service)
    for name, route, heading in PAGES:
        go_to(page, route)
        expect(page.get_by_role("heading", level=2)).to_have_text(heading)
        expect(page.locator("#page")).not_to_have_attribute("aria-busy", "true")
        expect(page.locator("#status.error")).to_have_count(0)
        shoot(page, tmp_path, name, full_page=name != "anomalies")  # that one is long
    go_to(page, f"#/executions/{report}")
    expect(status_of(page)).to_have_attribute("data-status", "COMPLETED")
    shoot(page, tmp_path, "execution")
    go_to(page, "#/jobs")
    job_row(page, "monthlyReportJob").get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    shoot(page, tmp_path, "run-dialog", full_page=False)


FAIL = "network failure"


def _answers_scripted(page: Any, execution_id: int, *script: dict[str, Any] | str) -> None:
    """The first reads of the execution answer as ``script`` says — the real one with
    those fields changed, or (``FAIL``) no answer at all; later reads are real."""
    pending = list(script)

    def handle(route: Any) -> None:
        if not pending:
            route.continue_()
            return
        step = pending.pop(0)
        if step == FAIL:
            route.abort("connectionrefused")
            return
        real = route.fetch()
        route.fulfill(response=real, json={**real.json(), **step})

    page.route(f"**/api/batch/jobs/executions/{execution_id}", handle)


def test_the_execution_view_follows_a_run_without_reloading(page: Any, service: Service) -> None:
    execution_id = service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    service.wait_finished(execution_id)
    running = {
        "status": "STARTED",
        "endTime": None,
        "progress": {"total": 10, "done": 4, "percent": 40.0},
    }
    # Running at 40 %, then one poll finds no service, then the real, finished execution.
    _answers_scripted(page, execution_id, running, FAIL)
    sign_in(page, service)
    page.evaluate("() => { window.notReloaded = true; }")
    go_to(page, f"#/executions/{execution_id}")
    expect(page.locator("#progress-text")).to_contain_text("40 % — 4 sur 10")
    expect(page.get_by_role("button", name="Arrêter")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        f"Suivi de l'exécution n° {execution_id} interrompu (le service ne répond pas)"
    )
    # The page keeps trying by itself and follows the run to its end.
    expect(status_of(page)).to_have_attribute("data-status", "COMPLETED")
    expect(page.get_by_role("button", name="Arrêter")).to_be_hidden()
    expect(page.get_by_role("status")).to_have_text(f"Exécution n° {execution_id} : Terminé.")
    assert page.evaluate("() => window.notReloaded") is True


def test_restart_and_abandon_ask_first_and_show_the_api_answer(page: Any, service: Service) -> None:
    execution_id = service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    service.wait_finished(execution_id)
    _answers_scripted(page, execution_id, {"status": "FAILED", "exitCode": "FAILED"})
    sign_in(page, service)
    go_to(page, f"#/executions/{execution_id}")
    expect(page.get_by_role("button", name="Relancer")).to_be_visible()
    page.get_by_role("button", name="Abandonner").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Abandonner l'exécution n° {execution_id} ?")
    dialog.get_by_role("button", name="Abandonner").click()
    # It really completed, so the service refuses (409) and the console says why.
    expect(page.get_by_role("status")).to_contain_text("Abandon refusé par le service")
    detail = service.api("GET", f"/api/batch/jobs/executions/{execution_id}").json()
    assert detail["status"] == "COMPLETED"


def test_the_statistics_chart_draws_the_success_rate_and_duration_of_each_day(
    page: Any, service: Service
) -> None:
    # The service's runs all happened today; days before are answered for the chart.
    days = [
        {"day": "2026-11-02", "executions": 4, "completed": 4, "failed": 0,
         "successRate": 100.0, "averageSeconds": 12.5},
        {"day": "2026-11-03", "executions": 2, "completed": 1, "failed": 1,
         "successRate": 50.0, "averageSeconds": 40.0},
        {"day": "2026-11-05", "executions": 1, "completed": 0, "failed": 1,
         "successRate": 0.0, "averageSeconds": None},
    ]  # fmt: skip
    page.route("**/api/batch/console/timeline*", lambda route: route.fulfill(json=days))
    sign_in(page, service)
    page.get_by_role("link", name="Statistiques").click()
    chart = page.get_by_role(
        "img", name="Taux de réussite et durée moyenne des exécutions par jour"
    )
    expect(chart.locator("circle.rate")).to_have_count(3)  # one point of the rate per day
    expect(chart.locator("rect.duration")).to_have_count(2)  # no bar without a duration
    heights = chart.locator("rect.duration").evaluate_all(
        "(bars) => bars.map((b) => Number(b.getAttribute('height')))"
    )
    assert heights[1] > heights[0] * 3  # 40 s against 12.5 s, on the same axis
    expect(chart).to_contain_text("03/11")
    table = page.get_by_role("table", name="Exécutions par jour (UTC)")
    expect(table.get_by_role("row")).to_have_count(4)
    expect(table.get_by_role("row").nth(2)).to_contain_text("50 %")
    expect(table.get_by_role("row").nth(3)).to_contain_text("—")


def test_the_history_pages_through_with_its_filters_kept(page: Any, service: Service) -> None:
    service.wait_finished(
        service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    )
    asked: list[str] = []

    def as_if_45(route: Any) -> None:
        # The real answer, counted as 45 executions: three pages of 20 without 45 runs.
        asked.append(route.request.url)
        real = route.fetch()
        route.fulfill(response=real, headers={**real.headers, "x-total-count": "45"})

    page.route("**/api/batch/console/history?*", as_if_45)
    sign_in(page, service)
    go_to(page, "#/history?job=tokenCleanupJob&status=COMPLETED")
    pager = page.get_by_role("navigation", name="Pagination")
    expect(pager).to_contain_text("Page 1 sur 3 (45 au total)")
    expect(pager.get_by_role("button", name="Page précédente")).to_be_disabled()
    pager.get_by_role("button", name="Page suivante").click()
    expect(pager).to_contain_text("Page 2 sur 3")
    expect(page).to_have_url(re.compile(r"job=tokenCleanupJob&status=COMPLETED&page=1$"))
    expect(page.get_by_label("Traitement")).to_have_value("tokenCleanupJob")
    expect(page.get_by_label("État")).to_have_value("COMPLETED")
    assert re.search(r"job=tokenCleanupJob&status=COMPLETED&page=1&size=20$", asked[-1])
    pager.get_by_role("button", name="Page suivante").click()
    expect(pager).to_contain_text("Page 3 sur 3")
    expect(pager.get_by_role("button", name="Page suivante")).to_be_disabled()
