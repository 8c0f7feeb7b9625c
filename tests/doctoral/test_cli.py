"""``tranche doctoral …`` and ``tranche job …`` on embedded defaults (SQLite files in a temp dir)."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from tranche.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    return tmp_path


def test_seed_then_run_both_jobs_then_verify_the_audit(env: Path) -> None:
    runner = CliRunner()
    seeded = runner.invoke(app, ["doctoral", "seed-demo", "--scale", "1"])
    assert seeded.exit_code == 0, seeded.output
    assert "users ROLE_DOCTORANT" in seeded.output

    tokens = runner.invoke(app, ["job", "run", "tokenCleanupJob"])
    assert tokens.exit_code == 0, tokens.output
    assert "COMPLETED" in tokens.output and "refreshTokensDeleted" in tokens.output

    alerts = runner.invoke(app, ["job", "run", "dureeDoctoratAlertJob"])
    assert alerts.exit_code == 0, alerts.output
    assert "alertes.APPROCHE_3_ANS" in alerts.output
    # No Kafka configured for the CLI: the events wait for the service's relay.
    assert "wait in batchdb's outbox" in alerts.output

    listing = runner.invoke(app, ["job", "list"])
    assert listing.exit_code == 0 and "0 0 8 ? * MON" in listing.output

    verified = runner.invoke(app, ["doctoral", "audit-verify"])
    assert verified.exit_code == 0, verified.output
    # Two runs, each audited when the CLI launched it and when it finished.
    assert "audit log intact: 4 rows" in verified.output

    unknown = runner.invoke(app, ["job", "run", "noSuchJob"])
    assert unknown.exit_code == 2
    assert "no job named 'noSuchJob'" in unknown.output


def test_dev_token_is_signed_with_the_embedded_secret(env: Path) -> None:
    result = CliRunner().invoke(app, ["doctoral", "token", "--email", "a@b.fr"])
    assert result.exit_code == 0, result.output
    secret = (env / "jwt-secret").read_text().strip()
    claims = jwt.decode(
        result.stdout.strip(),
        secret.encode(),
        algorithms=["HS256"],
        issuer="user-service",
    )
    assert claims["sub"] == "a@b.fr" and claims["roles"] == ["ROLE_ADMIN"]


def test_seed_demo_refuses_server_databases(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 40)
    monkeypatch.setenv("DOCTORAL_USER_DB_URL", "mysql://batch:hunter2@db.portail:3306/userdb")
    result = CliRunner().invoke(app, ["doctoral", "seed-demo"])
    assert result.exit_code == 2
    assert "refusing to write demo data into server databases: userdb" in result.output
    assert "hunter2" not in result.output


def test_production_without_jwt_secret_is_refused(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCTORAL_USER_DB_URL", "mysql://batch@db.portail:3306/userdb")
    result = CliRunner().invoke(app, ["job", "list"])
    assert result.exit_code == 2
    assert "JWT_SECRET is required" in result.output
