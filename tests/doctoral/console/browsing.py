"""What the console tests do in the tab, in the admin's terms (Playwright's auto-waiting
expectations throughout: a test waits on what the page shows, never on a delay)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.doctoral.console.harness import Service, copy_screenshot, missing, token

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the dev extra installs it
    missing("Playwright's Python package is absent (pip install -e '.[dev]')")

__all__ = ["expect", "finished_execution", "go_to", "job_row", "shoot", "sign_in", "status_of"]


def sign_in(page: Any, service: Service, jwt: str | None = None) -> None:
    page.goto(service.url + "/console/")
    page.get_by_label("Jeton JWT (rôle ROLE_ADMIN)").fill(jwt or token())
    page.get_by_role("button", name="Utiliser ce jeton").click()
    expect(page.get_by_role("heading", name="Traitements", exact=True)).to_be_visible()


def go_to(page: Any, route: str) -> None:
    """Follow an in-console link the way a bookmark would (the hash, no reload)."""
    page.evaluate("(route) => { window.location.hash = route; }", route)


def job_row(page: Any, job: str) -> Any:
    return page.locator(f'tr[data-job="{job}"]')


def status_of(page: Any) -> Any:
    """The execution page's status badge."""
    return page.locator("#execution-status [data-status]")


def finished_execution(page: Any, status: str = "COMPLETED") -> int:
    """On an execution's page, wait (on its polled status) until it ended so; its id."""
    expect(page).to_have_url(re.compile(r"#/executions/\d+$"))
    expect(status_of(page)).to_have_attribute("data-status", status, timeout=60_000)
    return int(page.url.rsplit("/", 1)[1])


def shoot(page: Any, folder: Path, name: str, full_page: bool = True) -> None:
    """A screenshot of the tab; also into docs/img when CONSOLE_SCREENSHOTS_DIR says so."""
    path = folder / f"console-{name}.png"
    page.screenshot(path=path, full_page=full_page, animations="disabled")
    assert path.stat().st_size > 10_000
    copy_screenshot(path, path.name)
