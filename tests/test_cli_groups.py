"""The CLI loads a command group or a service only when it is used, and lists them all."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tranche.cli import app
from tranche.commands import GROUPS
from tranche.services import SERVICE_MODULES, SERVICES, get_service


def test_serving_the_execution_service_imports_nothing_of_the_doctoral_service() -> None:
    code = (
        "import sys, tranche.cli\n"
        "from tranche.services import get_service\n"
        "get_service('execution')\n"
        "heavy = [m for m in sys.modules if m.startswith('tranche.doctoral')"
        " or m.split('.')[0] in ('matplotlib', 'reportlab')]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def test_help_lists_every_group_and_each_group_answers() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"], prog_name="tranche")
    assert listed.exit_code == 0, listed.output
    for name in [*GROUPS, "serve", "db", "demo"]:
        assert f" {name} " in listed.output
    for name in GROUPS:
        shown = runner.invoke(app, [name, "--help"], prog_name="tranche")
        assert shown.exit_code == 0, shown.output
        assert f"tranche {name}" in shown.output


def test_an_unknown_group_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["nosuchgroup"])
    assert result.exit_code == 2
    assert "nosuchgroup" in result.output


def test_the_service_registry_keeps_demo_order_and_names_unknown_services() -> None:
    assert list(SERVICES) == list(SERVICE_MODULES) == ["execution", "trade", "doctoral"]
    assert SERVICES["trade"].name == "trade"
    with pytest.raises(KeyError, match="unknown service 'nope' \\(known: execution, trade"):
        get_service("nope")
