"""Console fixtures: one running service (with a fake user-service and a real SMTP server)
per module, one browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.doctoral.console.harness import (
    MailServer,
    Service,
    UserService,
    launch_chromium,
    missing,
    start_service,
)


@pytest.fixture(scope="module")
def user_service() -> Iterator[UserService]:
    with UserService() as fake:
        yield fake


@pytest.fixture(scope="module")
def mail_server() -> Iterator[MailServer]:
    with MailServer() as server:
        yield server


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, user_service: UserService, mail_server: MailServer
) -> Iterator[Service]:
    yield from start_service(tmp_path_factory.mktemp("console"), user_service.url, mail_server.port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright's Python package is absent (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, service: Service, tmp_path: Path) -> Iterator[Any]:
    """A fresh tab (its own context: no token, no cookies) that fails on any page error
    and on any request leaving the service's origin (no CDN: the machine has no internet)."""
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, locale="fr-FR", accept_downloads=True
    )
    context.set_default_timeout(20_000)
    tab = context.new_page()
    errors: list[str] = []
    foreign: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    own = (service.url + "/", "blob:" + service.url + "/", "data:", "about:")
    tab.on("request", lambda r: None if r.url.startswith(own) else foreign.append(r.url))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert foreign == [], f"requests outside the service: {foreign}"
