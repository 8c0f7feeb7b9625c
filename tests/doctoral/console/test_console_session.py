"""Who may use the console and how: sign-in, refusal, session end, keyboard alone, contrast."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from tests.doctoral.console.browsing import expect, finished_execution, go_to, job_row, sign_in
from tests.doctoral.console.harness import PASSWORD, Service, UserService, token

NO_STORAGE = "window.localStorage.length + window.sessionStorage.length + document.cookie.length"


def test_a_token_without_role_admin_is_refused(page: Any, service: Service) -> None:
    page.goto(service.url + "/console/")
    page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)").fill(token(["ROLE_DOCTORANT"]))
    page.get_by_role("button", name="Utiliser ce jeton").click()
    expect(page.get_by_role("alert")).to_contain_text("Accès refusé")
    expect(page.get_by_role("navigation", name="Pages de la console")).to_be_hidden()


def test_an_expired_token_returns_an_idle_page_to_the_login_with_a_message(
    page: Any, service: Service
) -> None:
    page.clock.install()  # the page's clock, moved on below instead of waiting an hour
    sign_in(page, service, token(ttl=timedelta(hours=1)))
    job_row(page, "archiveJob").get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.clock.fast_forward(61 * 60 * 1000)
    # Nothing clicked: the token's own expiry ends the session (an open dialog with it).
    expect(page.get_by_role("alert")).to_contain_text("session a expiré")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Pages de la console")).to_be_hidden()
    # The sign-in form is offered (DOCTORAL_USER_SERVICE_URL is set) and has the focus.
    expect(page.get_by_label("Adresse e-mail")).to_be_focused()
    assert page.evaluate(NO_STORAGE) == 0


def test_a_token_the_api_stops_accepting_returns_to_the_login(page: Any, service: Service) -> None:
    sign_in(page, service)
    # The token is still young by its claims, but the API now answers 401 (revoked, or the
    # service's secret rotated): the next page asks to sign in again.
    page.route(
        "**/api/batch/**",
        lambda route: route.fulfill(status=401, json={"message": "Invalid or expired token"}),
    )
    page.get_by_role("link", name="Statistiques").click()
    expect(page.get_by_role("alert")).to_contain_text("n'est plus valide")
    expect(page.get_by_role("heading", name="Statistiques globales")).to_have_count(0)
    page.unroute("**/api/batch/**")
    page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)").fill(token())
    page.get_by_role("button", name="Utiliser ce jeton").click()
    # Back where the admin was going.
    expect(page.get_by_role("heading", name="Statistiques globales")).to_be_visible()
    assert page.evaluate(NO_STORAGE) == 0


def tab_to(page: Any, script: str, expected: str, key: str = "Tab", presses: int = 60) -> None:
    """Press ``key`` until ``script`` (on the focused element) gives ``expected``."""
    for _ in range(presses):
        if page.evaluate(
            f"(() => {{ const el = document.activeElement; return {script}; }})()"
        ) == (expected):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{expected!r} never got the focus with {key}")


def test_a_job_can_be_run_with_the_keyboard_only(page: Any, service: Service) -> None:
    page.goto(service.url + "/console/")
    expect(page.get_by_label("Adresse e-mail")).to_be_focused()
    tab_to(page, "el.id", "login-token")  # past e-mail, password and their button
    page.keyboard.insert_text(token())
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()
    tab_to(page, "el.getAttribute('aria-label')", "Lancer dataConsistencyJob")
    page.keyboard.press("Enter")
    dry_run = page.get_by_label(re.compile("Simulation"))
    expect(dry_run).to_be_focused()
    page.keyboard.press("Space")
    expect(dry_run).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Lancer maintenant")).to_be_focused()
    page.keyboard.press("Enter")
    finished_execution(page)

    # Back up to the menu, still by keyboard.
    tab_to(page, "el.textContent", "Anomalies", key="Shift+Tab")
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
    assert page.evaluate(NO_STORAGE) == 0


#: WCAG 2.1 AA contrast of every visible text (4.5:1, or 3:1 from 24 px or bold 18.66 px),
#: against the first opaque background behind it; disabled controls are exempt (1.4.3).
LOW_CONTRAST = """() => {
  const rgb = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c);
    if (!m) return null;
    const [r, g, b, a = 1] = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const over = (top, under) => ["r", "g", "b"].reduce(
    (o, k) => ({ ...o, [k]: top[k] * top.a + under[k] * (1 - top.a) }), { a: 1 });
  const lum = (c) => ["r", "g", "b"].map((k) => c[k] / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return over(c, { r: 255, g: 255, b: 255, a: 1 });
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const scope = document.querySelector("dialog[open]") || document.body;
  const low = [];
  let checked = 0;
  for (const el of scope.querySelectorAll("*")) {
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== "visible" || !el.getClientRects().length) continue;
    if (el.closest(":disabled, option, title")) continue;
    const fg = rgb(el instanceof SVGElement ? style.fill : style.color);
    if (!fg) continue;
    const bg = background(el);
    const [a, b] = [lum(over(fg, bg)), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) {
      low.push(`${el.tagName} "${el.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}:1`);
    }
  }
  return { checked, low };
}"""


def assert_readable(page: Any, where: str) -> None:
    found = page.evaluate(LOW_CONTRAST)
    assert found["checked"] > 5, where
    assert found["low"] == [], f"{where}: text below WCAG AA contrast: {found['low']}"


def test_every_page_has_wcag_aa_text_contrast(page: Any, service: Service) -> None:
    for job in ("monthlyReportJob", "dataConsistencyJob"):
        run = service.api("POST", f"/api/batch/jobs/{job}/run").json()["executionId"]
        service.wait_finished(run)
    page.goto(service.url + "/console/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    assert_readable(page, "login")
    sign_in(page, service)
    pages = [
        ("#/jobs", "Traitements"),
        ("#/history", "Historique des exécutions"),
        ("#/stats", "Statistiques globales"),
        ("#/reports", "Rapports"),
        ("#/anomalies", "Anomalies de la dernière vérification de cohérence"),
        ("#/audit", "Journal d'audit"),
        (f"#/executions/{run}", f"Exécution n° {run}"),
    ]
    for route, heading in pages:
        go_to(page, route)
        expect(page.get_by_role("heading", level=2)).to_contain_text(heading)
        expect(page.locator("#page")).not_to_have_attribute("aria-busy", "true")
        assert_readable(page, route)
    go_to(page, "#/jobs")
    job_row(page, "monthlyReportJob").get_by_role("button").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    assert_readable(page, "run dialog")
