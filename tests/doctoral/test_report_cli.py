"""``tranche job run monthlyReportJob [--month YYYY-MM]`` on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tranche.cli import app


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS", "DOCTORAL_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    return tmp_path


def test_report_for_a_given_month(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["doctoral", "seed-demo", "--scale", "1"]).exit_code == 0
    done = runner.invoke(app, ["job", "run", "monthlyReportJob", "--month", "2025-02"])
    assert done.exit_code == 0, done.output
    assert "COMPLETED" in done.output and "pdfBytes" in done.output
    # No SMTP host: the seeded admins are recorded as skipped, the job completes.
    assert "mail.skipped" in done.output
    assert (env / "reports" / "rapport_2025_02.pdf").stat().st_size > 10_000

    bad = runner.invoke(app, ["job", "run", "monthlyReportJob", "--month", "02/2025"])
    assert bad.exit_code == 2
    assert "month must be YYYY-MM" in bad.output
