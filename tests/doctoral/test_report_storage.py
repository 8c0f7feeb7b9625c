"""The reports directory serves report names only, whatever string it is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tranche.doctoral.reports.period import Month
from tranche.doctoral.reports.storage import (
    REPORT_NAME,
    InvalidReportName,
    ReportNotFound,
    ReportStore,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    root = tmp_path_factory.mktemp("report-store")
    (root / "outside.pdf").write_bytes(b"outside")
    made = ReportStore(root / "reports")
    made.write("rapport_2025_02.pdf", b"%PDF inside")
    return made


_tricky = st.sampled_from(["..", "/", "\\", "%2f", "%5c", "%252f", "\x00", "outside", ".pdf"])


@given(st.lists(st.one_of(_tricky, st.text(max_size=8)), max_size=6).map("".join))
def test_any_name_is_a_report_or_refused(store: ReportStore, name: str) -> None:
    try:
        content = store.read(name)
    except InvalidReportName:
        assert not REPORT_NAME.match(name)
        return
    except ReportNotFound:
        assert REPORT_NAME.match(name)
        return
    assert name == "rapport_2025_02.pdf" and content == b"%PDF inside"


@given(st.integers(2000, 2999), st.integers(1, 12))
def test_every_month_file_name_is_a_report_name(year: int, month: int) -> None:
    assert REPORT_NAME.match(Month(year, month).file_name)


def test_write_replaces_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    store = ReportStore(tmp_path / "r")
    store.write("rapport_2025_02.pdf", b"first")
    store.write("rapport_2025_02.pdf", b"second")
    assert store.read("rapport_2025_02.pdf") == b"second"
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["rapport_2025_02.pdf"]
