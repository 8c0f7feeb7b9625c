from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from tranche import __version__
from tranche.cli import app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"tranche {__version__}"


def test_unknown_service_is_a_clear_error() -> None:
    result = CliRunner().invoke(app, ["serve", "nosuch"])
    assert result.exit_code == 2
    assert "unknown service 'nosuch'" in result.output


def test_demo_exits_zero_and_prints_a_summary() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tranche", "demo"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tranche demo" in proc.stdout
    assert "Kafka round trip" in proc.stdout
