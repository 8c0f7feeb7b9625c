"""The console's test world: the doctoral service started as an operator would, a fake
user-service for the sign-in relay, and headless Debian chromium driven by Playwright.

The service runs as ``tranche serve doctoral`` in a subprocess on a free loopback port,
over embedded SQLite filled by ``tranche doctoral seed-demo``: the browser talks to the
same process, files and routes a deployment has. Waiting is always on state (the health
endpoint, the page's content), never on a fixed delay.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tranche.core.broker import free_port
from tranche.core.jwt import issue_token

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PASSWORD",
    "SECRET",
    "MailServer",
    "Service",
    "UserService",
    "copy_screenshot",
    "launch_chromium",
    "missing",
    "start_service",
    "tampered_audit_row",
    "token",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "console-e2e-secret-shared-with-user-service-0123"
ADMIN = "admin@univ.fr"
PASSWORD = "mot-de-passe-admin"
START_TIMEOUT_S = 90.0
TRANCHE = Path(sys.executable).with_name("tranche")


def token(roles: Sequence[str] = ("ROLE_ADMIN",), ttl: timedelta = timedelta(hours=1)) -> str:
    return issue_token(SECRET.encode(), ADMIN, list(roles), "user-service", ttl=ttl)


def missing(reason: str) -> None:
    """Skip where the browser cannot run; fail under CI=true, where it must."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run)")
    pytest.skip(reason, allow_module_level=True)


def launch_chromium(playwright: Any) -> Any:
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} is absent (scripts/bootstrap.sh installs Debian's chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


class UserService:
    """user-service's ``POST /api/auth/login`` on loopback: one admin, one password."""

    def __init__(self) -> None:
        self.logins: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.logins.append(body)
                if self.path == "/api/auth/login" and body == {
                    "email": ADMIN,
                    "password": PASSWORD,
                }:
                    answer, status = {"accessToken": token(), "tokenType": "Bearer"}, 200
                else:
                    answer, status = {"message": "Bad credentials"}, 401
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> UserService:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class MailServer:
    """A real SMTP server on loopback whose answer to DATA can be held.

    While :meth:`hold` is in effect a job sending mail is genuinely running, waiting on
    the server, until :meth:`release`: the test decides when it may go on, so what the
    console shows of a running execution (and of a stop asked meanwhile) never depends
    on how fast the machine is.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.received = 0
        self._open = threading.Event()
        self._open.set()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        await asyncio.get_running_loop().run_in_executor(None, self._open.wait)
        self.received += 1
        return "250 OK"

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def __enter__(self) -> MailServer:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
        self.controller.stop()


@dataclass
class Service:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token()}", **kw.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kw)

    def wait_finished(self, execution_id: int, timeout_s: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            found: dict[str, Any] = self.api(
                "GET", f"/api/batch/jobs/executions/{execution_id}"
            ).json()
            if found["status"] not in ("STARTING", "STARTED", "STOPPING"):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {execution_id} still {found['status']}")
            threading.Event().wait(0.05)


def _env(data_dir: Path, user_service_url: str | None, smtp_port: int | None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCTORAL_", "BATCH_", "KAFKA_")) and k != "JWT_SECRET"
    }
    env.update(
        DOCTORAL_DATA_DIR=str(data_dir),
        JWT_SECRET=SECRET,
        DOCTORAL_JWT_LEEWAY_S="0",
        BATCH_SCHEDULER_ENABLED="true",
        DOCTORAL_LOG_LEVEL="WARNING",
        DOCTORAL_TRIGGER_RATE_LIMIT="1000/minute",
    )
    if user_service_url:
        env["DOCTORAL_USER_SERVICE_URL"] = user_service_url
    if smtp_port:
        # A held answer must outlast the test's clicks, never the job's patience.
        env.update(
            DOCTORAL_SMTP_HOST="127.0.0.1",
            DOCTORAL_SMTP_PORT=str(smtp_port),
            DOCTORAL_SMTP_TIMEOUT_S="300",
        )
    return env


def start_service(
    data_dir: Path, user_service_url: str | None = None, smtp_port: int | None = None
) -> Iterator[Service]:
    """Seed the embedded databases, start the service, wait until it is healthy; stop it after."""
    env = _env(data_dir, user_service_url, smtp_port)
    seeded = subprocess.run(
        [str(TRANCHE), "doctoral", "seed-demo"], env=env, capture_output=True, timeout=300
    )
    assert seeded.returncode == 0, seeded.stderr.decode()[-2000:]
    port = free_port()
    log = (data_dir / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(TRANCHE), "serve", "doctoral", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    service = Service(f"http://127.0.0.1:{port}", data_dir, process)
    try:
        _wait_healthy(service)
        yield service
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_healthy(service: Service) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if service.process.poll() is not None:
            log = (service.data_dir / "serve.log").read_text(errors="replace")
            raise AssertionError(f"the service exited at start:\n{log[-3000:]}")
        try:
            if httpx.get(service.url + "/actuator/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the service was not healthy within {START_TIMEOUT_S}s")
        threading.Event().wait(0.1)


def copy_screenshot(source: Path, name: str) -> None:
    """Into ``CONSOLE_SCREENSHOTS_DIR`` when set (``docs/img`` regenerated on purpose)."""
    target = os.environ.get("CONSOLE_SCREENSHOTS_DIR")
    if target:
        shutil.copyfile(source, Path(target) / name)


@contextmanager
def tampered_audit_row(service: Service, seq: int) -> Iterator[None]:
    """Rewrite one audit row behind the service's back (its append-only triggers dropped),
    as someone with write access to batchdb could; put the row and the triggers back after."""
    db = sqlite3.connect(service.data_dir / "batchdb.db")
    try:
        triggers = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        ).fetchall()
        (details,) = db.execute("SELECT details FROM audit_log WHERE seq = ?", (seq,)).fetchone()
        for name, _sql in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE audit_log SET details = 'rewritten' WHERE seq = ?", (seq,))
        db.commit()
        try:
            yield
        finally:
            db.execute("UPDATE audit_log SET details = ? WHERE seq = ?", (details, seq))
            for _name, sql in triggers:
                db.execute(sql)
            db.commit()
    finally:
        db.close()
