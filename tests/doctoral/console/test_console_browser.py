"""The console in headless chromium, against the running service: what an admin does with it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.doctoral.console.harness import (
    PASSWORD,
    Service,
    UserService,
    copy_screenshot,
    missing,
    token,
)

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the dev extra installs it
    missing("Playwright's Python package is absent (pip install -e '.[dev]')")


def sign_in(page: Any, service: Service, jwt: str | None = None) -> None:
    page.goto(service.url + "/console/")
    page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)").fill(jwt or token())
    page.get_by_role("button", name="Utiliser ce jeton").click()
    expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()


def job_row(page: Any, job: str) -> Any:
    return page.locator(f'tr[data-job="{job}"]')


def finished_execution(page: Any) -> int:
    """On an execution's page, wait (on its polled status) until it completed; its id."""
    expect(page).to_have_url(re.compile(r"#/executions/\d+$"))
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "COMPLETED", timeout=60_000
    )
    return int(page.url.rsplit("/", 1)[1])


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


def test_a_token_without_role_admin_is_refused(page: Any, service: Service) -> None:
    page.goto(service.url + "/console/")
    page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)").fill(token(["ROLE_DOCTORANT"]))
    page.get_by_role("button", name="Utiliser ce jeton").click()
    expect(page.get_by_role("alert")).to_contain_text("Accès refusé")
    expect(page.get_by_role("navigation", name="Pages de la console")).to_be_hidden()


def test_an_expired_session_returns_to_the_login_with_a_message(
    page: Any, service: Service
) -> None:
    short = token(ttl=timedelta(seconds=4))
    exp_ms = _exp_ms(short)
    sign_in(page, service, short)
    # Wait on the clock the token is checked against, not a fixed delay.
    page.wait_for_function("(after) => Date.now() > after", arg=exp_ms + 1000, timeout=30_000)
    page.get_by_role("link", name="Statistiques").click()
    expect(page.get_by_role("alert")).to_contain_text("session a expiré")
    # The sign-in form is offered (DOCTORAL_USER_SERVICE_URL is set) and has the focus.
    expect(page.get_by_label("Adresse e-mail")).to_be_focused()
    assert page.evaluate("window.localStorage.length + window.sessionStorage.length") == 0


def test_a_job_can_be_run_with_the_keyboard_only(page: Any, service: Service) -> None:
    page.goto(service.url + "/console/")
    expect(page.get_by_label("Adresse e-mail")).to_be_focused()
    for _ in range(10):  # e-mail, password, sign-in button, then the token field
        if page.evaluate("document.activeElement.id") == "login-token":
            break
        page.keyboard.press("Tab")
    expect(page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)")).to_be_focused()
    page.keyboard.insert_text(token())
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()
    for _ in range(40):
        if page.evaluate("document.activeElement.getAttribute('aria-label')") == (
            "Lancer dataConsistencyJob"
        ):
            break
        page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Lancer dataConsistencyJob")).to_be_focused()
    page.keyboard.press("Enter")
    dry_run = page.get_by_label(re.compile("Simulation"))
    expect(dry_run).to_be_focused()
    page.keyboard.press("Space")
    expect(dry_run).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Lancer maintenant")).to_be_focused()
    page.keyboard.press("Enter")
    finished_execution(page)

    page.get_by_role("link", name="Anomalies").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_contain_text("simulation (dry run)")
    expect(page.get_by_role("main")).to_contain_text("Demande de soutenance sans inscription")


def test_escape_cancels_a_run(page: Any, service: Service) -> None:
    sign_in(page, service)
    before = service.api("GET", "/api/batch/jobs/archiveJob/executions").headers["X-Total-Count"]
    job_row(page, "archiveJob").get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("button", name="Lancer archiveJob")).to_be_focused()
    after = service.api("GET", "/api/batch/jobs/archiveJob/executions").headers["X-Total-Count"]
    assert after == before


def test_sign_in_through_user_service(
    page: Any, service: Service, user_service: UserService
) -> None:
    page.goto(service.url + "/console/")
    page.get_by_label("Adresse e-mail").fill("admin@univ.fr")
    page.get_by_label("Mot de passe").fill("pas le bon")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong e-mail or password")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()
    assert user_service.logins[-1] == {"email": "admin@univ.fr", "password": PASSWORD}


def test_the_audit_log_shows_the_runs_and_an_intact_chain(page: Any, service: Service) -> None:
    service.wait_finished(
        service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    )
    sign_in(page, service)
    page.get_by_role("link", name="Journal d'audit").click()
    expect(page.locator("#chain-result")).to_contain_text("Chaîne intègre")
    expect(page.get_by_role("table", name="Entrées, les plus récentes d'abord")).to_contain_text(
        "MANUAL_TRIGGER"
    )


def _exp_ms(jwt: str) -> int:
    import base64
    import json

    payload = jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"]) * 1000


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
    _shoot(page, tmp_path, "login")
    sign_in(page, service)
    for name, route, heading in PAGES:
        page.evaluate("(route) => { window.location.hash = route; }", route)
        expect(page.get_by_role("heading", level=2)).to_have_text(heading)
        expect(page.locator("#page")).not_to_have_attribute("aria-busy", "true")
        expect(page.locator("#status.error")).to_have_count(0)
        _shoot(page, tmp_path, name, full_page=name != "anomalies")  # that one is long
    page.evaluate("(route) => { window.location.hash = route; }", f"#/executions/{report}")
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "COMPLETED"
    )
    _shoot(page, tmp_path, "execution")
    page.evaluate("() => { window.location.hash = '#/jobs'; }")
    job_row(page, "monthlyReportJob").get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    _shoot(page, tmp_path, "run-dialog", full_page=False)


def _shoot(page: Any, folder: Path, name: str, full_page: bool = True) -> None:
    path = folder / f"console-{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    assert path.stat().st_size > 10_000
    copy_screenshot(path, path.name)


def _first_answer_rewritten(page: Any, execution_id: int, changes: dict[str, Any]) -> None:
    """The first read of the execution answers it as ``changes`` say; later reads are real."""
    served = {"first": True}

    def handle(route: Any) -> None:
        if not served["first"]:
            route.continue_()
            return
        served["first"] = False
        real = route.fetch()
        route.fulfill(response=real, json={**real.json(), **changes})

    page.route(f"**/api/batch/jobs/executions/{execution_id}", handle)


def test_the_execution_view_follows_a_run_without_reloading(page: Any, service: Service) -> None:
    execution_id = service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    service.wait_finished(execution_id)
    running = {
        "status": "STARTED",
        "endTime": None,
        "progress": {"total": 10, "done": 4, "percent": 40.0},
    }
    _first_answer_rewritten(page, execution_id, running)
    sign_in(page, service)
    page.evaluate("() => { window.notReloaded = true; }")
    page.evaluate("(route) => { window.location.hash = route; }", f"#/executions/{execution_id}")
    expect(page.locator("#progress-text")).to_contain_text("40 % — 4 sur 10")
    expect(page.get_by_role("button", name="Arrêter")).to_be_visible()
    # The next poll reads the real, finished execution: the page follows by itself.
    expect(page.locator("#execution-status [data-status]")).to_have_attribute(
        "data-status", "COMPLETED"
    )
    expect(page.get_by_role("button", name="Arrêter")).to_be_hidden()
    expect(page.get_by_role("status")).to_contain_text(f"Exécution n° {execution_id} : Terminé")
    assert page.evaluate("() => window.notReloaded") is True


def test_restart_and_abandon_ask_first_and_show_the_api_answer(page: Any, service: Service) -> None:
    execution_id = service.api("POST", "/api/batch/jobs/tokenCleanupJob/run").json()["executionId"]
    service.wait_finished(execution_id)
    _first_answer_rewritten(page, execution_id, {"status": "FAILED", "exitCode": "FAILED"})
    sign_in(page, service)
    page.evaluate("(route) => { window.location.hash = route; }", f"#/executions/{execution_id}")
    expect(page.get_by_role("button", name="Relancer")).to_be_visible()
    page.get_by_role("button", name="Abandonner").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Abandonner l'exécution n° {execution_id} ?")
    dialog.get_by_role("button", name="Abandonner").click()
    # It really completed, so the service refuses (409) and the console says why.
    expect(page.get_by_role("status")).to_contain_text("Abandonner refusé")
    detail = service.api("GET", f"/api/batch/jobs/executions/{execution_id}").json()
    assert detail["status"] == "COMPLETED"
