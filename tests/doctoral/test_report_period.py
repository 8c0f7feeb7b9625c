"""The report's month: parsing, neighbours, bounds, French names."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tranche.doctoral.reports.period import Month, MonthSyntaxError

months = st.builds(Month, st.integers(2000, 2998), st.integers(1, 12))


@given(months)
def test_round_trip_and_neighbours(month: Month) -> None:
    assert Month.parse(str(month)) == month
    assert month.previous.next == month == month.next.previous
    assert month.previous.end == month.start < month.end == month.next.start
    assert Month.before(month.next.start.date()) == month


def test_labels_and_edges() -> None:
    assert Month(2025, 2).label == "février 2025"
    assert Month(2025, 8).label == "août 2025"
    assert Month(2025, 1).previous == Month(2024, 12)
    assert Month(2024, 12).end == datetime(2025, 1, 1)
    assert Month.before(date(2025, 3, 1)) == Month(2025, 2)
    assert Month(2025, 2).file_name == "rapport_2025_02.pdf"


@pytest.mark.parametrize("bad", ["2025-13", "2025-00", "2025-2", "25-02", "02/2025", "", "1999-12"])
def test_malformed_months_are_refused_by_name(bad: str) -> None:
    with pytest.raises(MonthSyntaxError, match="month must be YYYY-MM"):
        Month.parse(bad)
