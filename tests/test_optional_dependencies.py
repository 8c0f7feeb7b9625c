"""The services and the ``tranche`` command start without the ``demo`` extra.

Faker, psutil and pyinstrument are in the ``demo`` extra (benchmarks, demo, seeders):
an installation without it must still import every service and the CLI. The check runs
in a fresh interpreter in which importing those packages fails, as it would without them.
"""

from __future__ import annotations

import subprocess
import sys

DEMO_EXTRA = ("faker", "psutil", "pyinstrument")

_PROBE = f"""
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {DEMO_EXTRA!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
import tranche.execution.app, tranche.trade.app, tranche.doctoral.app
import tranche.cli
print("imported")
"""


def test_services_and_cli_import_without_the_demo_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_the_probe_does_hide_the_demo_extra() -> None:
    probe = _PROBE.replace("import tranche.cli", "import faker")
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "No module named 'faker'" in done.stderr
