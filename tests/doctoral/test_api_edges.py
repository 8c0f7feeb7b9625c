"""The admin API's edges: token clock skew, the client IP behind proxies, refused triggers.

Tokens are judged with a 30 s leeway on exp, nbf and iat by default; X-Forwarded-For
is believed only from configured trusted proxies; a trigger refused by the rate limit
or because the job runs writes its audit row, as do the CLI's run, stop and restart.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.doctoral.factories import SECRET, admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import auth, serving
from tranche.cli import app as cli
from tranche.core.jwt import InvalidTokenError, JwtVerifier, issue_token
from tranche.doctoral.auth import client_ip
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings

NOW = datetime(2025, 5, 5, 12, 0, tzinfo=UTC)


def verifier(leeway: int | None = None) -> JwtVerifier:
    default = DoctoralSettings(jwt_secret=SECRET).jwt_leeway_s
    return JwtVerifier(
        SECRET.encode(), "user-service", leeway_s=default if leeway is None else leeway,
        clock=lambda: NOW,
    )  # fmt: skip


def token(issued: datetime, ttl: timedelta = timedelta(hours=1), **extra: int) -> str:
    return issue_token(
        SECRET.encode(), "a@univ.fr", ["ROLE_ADMIN"], "user-service", ttl, issued, extra=extra
    )


def test_the_default_leeway_is_30_seconds_on_exp_iat_and_nbf() -> None:
    v = verifier()
    assert v.leeway_s == 30
    # Expired 20 s ago by our clock: user-service's clock is a little behind; accepted.
    v.verify(token(NOW - timedelta(hours=1, seconds=20)))
    with pytest.raises(InvalidTokenError, match="expired"):
        v.verify(token(NOW - timedelta(hours=1, seconds=40)))
    # Issued 20 s "in the future": the issuer's clock is ahead; accepted, 60 s is not.
    v.verify(token(NOW + timedelta(seconds=20)))
    with pytest.raises(InvalidTokenError, match="issued in the future"):
        v.verify(token(NOW + timedelta(seconds=60)))
    v.verify(token(NOW, nbf=int((NOW + timedelta(seconds=25)).timestamp())))
    with pytest.raises(InvalidTokenError, match="not valid yet"):
        v.verify(token(NOW, nbf=int((NOW + timedelta(seconds=45)).timestamp())))
    with pytest.raises(InvalidTokenError, match="expired"):
        verifier(leeway=0).verify(token(NOW - timedelta(hours=1, seconds=1)))


PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


def test_forwarded_for_is_believed_only_through_trusted_proxies() -> None:
    # From an untrusted peer the header is a claim by the caller: ignored.
    assert client_ip("203.0.113.9", "1.2.3.4", PROXIES) == "203.0.113.9"
    assert client_ip("203.0.113.9", "1.2.3.4", []) == "203.0.113.9"
    # Through our proxy: the address the proxy saw.
    assert client_ip("10.0.0.5", "198.51.100.7", PROXIES) == "198.51.100.7"
    # A forged left part stays forged: the first untrusted hop from the right is the client.
    assert client_ip("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.2.3.4", PROXIES) == "198.51.100.7"
    assert client_ip("10.0.0.5", "not-an-ip, 10.9.9.9", PROXIES) == "10.9.9.9"
    assert client_ip("10.0.0.5", None, PROXIES) == "10.0.0.5"


@given(
    peer=st.ip_addresses(v=4).map(str),
    chain=st.lists(st.ip_addresses(v=4).map(str), max_size=4),
)
def test_the_client_ip_is_the_peer_or_a_hop_of_the_chain(peer: str, chain: list[str]) -> None:
    found = client_ip(peer, ", ".join(chain) or None, PROXIES)
    assert found == peer or found in chain
    if ipaddress.ip_address(peer) not in PROXIES[0]:
        assert found == peer


async def audit(runtime: Runtime, kind: str) -> list[tuple[str | None, str | None, str | None]]:
    async with runtime.sources.batchdb.sessions() as s:
        rows = await s.execute(
            sa.select(audit_log.c.status, audit_log.c.ip_address, audit_log.c.details)
            .where(audit_log.c.event_type == kind)
            .order_by(audit_log.c.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_a_rate_limited_trigger_is_audited_with_the_real_client_ip(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(
        sqlite_databases,
        kafka_bootstrap,
        trigger_rate_limit="1/minute",
        trusted_proxies=["10.0.0.0/8"],
    ) as (app, client):
        headers = {**auth(admin_token()), "X-Forwarded-For": "198.51.100.7"}
        first = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)
        assert first.status_code == 200
        second = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)
        assert second.status_code == 429
        rows = await audit(app.state.runtime, "MANUAL_TRIGGER")
        assert [(r[0], r[1]) for r in rows] == [
            ("ACCEPTED", "198.51.100.7"),
            ("REFUSED", "198.51.100.7"),
        ]
        assert "Too many job triggers" in (rows[1][2] or "")


async def test_forwarded_for_from_an_untrusted_peer_is_not_recorded(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap) as (app, client):
        headers = {**auth(admin_token()), "X-Forwarded-For": "6.6.6.6"}
        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)
        assert r.status_code == 200
        [(status, ip, _)] = await audit(app.state.runtime, "MANUAL_TRIGGER")
        assert (status, ip) == ("ACCEPTED", "10.1.2.3")  # the peer, not the header


def test_cli_stop_and_restart_are_audited_even_when_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    runner = CliRunner()
    assert runner.invoke(cli, ["job", "run", "tokenCleanupJob"]).exit_code == 0
    assert runner.invoke(cli, ["job", "stop", "1"]).exit_code == 2  # completed: not running
    assert runner.invoke(cli, ["job", "restart", "1"]).exit_code == 2
    with sqlite3.connect(tmp_path / "batchdb.db") as db:
        rows = db.execute(
            "SELECT event_type, status, user_id FROM audit_log ORDER BY seq"
        ).fetchall()
    kinds = [(kind, status) for kind, status, _ in rows]
    assert ("MANUAL_TRIGGER", "ACCEPTED") in kinds
    assert ("JOB_STOP", "REFUSED") in kinds and ("JOB_RESTART", "REFUSED") in kinds
    assert all(user and user.startswith("cli:") for _kind, _status, user in rows)
