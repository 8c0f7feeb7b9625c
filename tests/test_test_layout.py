"""Test modules share helpers through ``tests/fixtures`` and per-area harness modules,
never by importing a ``conftest`` (pytest owns those; importing one runs it twice)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
CONFTEST_IMPORT = re.compile(r"^\s*(from\s+[\w.]*conftest\s+import|import\s+[\w.]*conftest)", re.M)


def test_no_test_module_imports_a_conftest() -> None:
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if CONFTEST_IMPORT.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
