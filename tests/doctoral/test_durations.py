"""Month arithmetic and alert classification: the boundaries the issue names, and properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tranche.doctoral.durations import (
    AlertType,
    Thresholds,
    add_months,
    classify,
    describe_duration,
    priority_of,
    whole_months,
)

T = Thresholds()
RUN = date(2025, 3, 17)


def started(months: float) -> date:
    """The first-enrollment date that is ``months`` (e.g. 32.9) months before RUN."""
    whole = int(months)
    start = add_months(RUN, -whole)
    if months != whole:
        # Three days short of the next anniversary: still ``whole`` complete months.
        start = add_months(RUN, -(whole + 1)) + timedelta(days=3)
    return start


@pytest.mark.parametrize(
    ("months", "derogation", "expected"),
    [
        (32.9, False, None),
        (33, False, AlertType.TROIS_ANS),
        (35.9, False, AlertType.TROIS_ANS),
        (36, False, None),
        (33, True, None),
        (35.9, True, None),
        (68.9, False, None),
        (69, False, AlertType.SIX_ANS),
        (71.9, False, AlertType.SIX_ANS),
        (72, False, AlertType.DEPASSEMENT),
        (69, True, AlertType.SIX_ANS),
        (72, True, AlertType.DEPASSEMENT),
        (90, False, AlertType.DEPASSEMENT),
        (0, False, None),
    ],
)
def test_alert_boundaries(months: float, derogation: bool, expected: AlertType | None) -> None:
    elapsed = whole_months(started(months), RUN)
    assert elapsed == int(months)
    assert classify(elapsed, derogation, T) is expected


def test_month_end_is_clamped_not_rolled_over() -> None:
    assert add_months(date(2022, 1, 31), 1) == date(2022, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert whole_months(date(2022, 1, 31), date(2022, 2, 28)) == 1
    assert whole_months(date(2022, 1, 31), date(2022, 2, 27)) == 0
    assert whole_months(date(2022, 5, 31), date(2025, 2, 28)) == 33


def test_priorities_and_wording() -> None:
    assert [priority_of(a) for a in AlertType] == ["NORMALE", "HAUTE", "URGENTE"]
    assert describe_duration(34) == "2 ans 10 mois"
    assert describe_duration(12) == "1 an"
    assert describe_duration(7) == "7 mois"
    assert describe_duration(72) == "6 ans"


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="three_from"):
        Thresholds(three_from=36, three_until=33)


dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))


@given(dates, st.integers(min_value=0, max_value=200))
def test_adding_n_months_is_n_whole_months(start: date, n: int) -> None:
    assert whole_months(start, add_months(start, n)) == n


@given(dates, dates)
def test_whole_months_is_the_largest_anniversary_not_after(start: date, on: date) -> None:
    m = whole_months(start, on)
    if on >= start:
        assert add_months(start, m) <= on < add_months(start, m + 1)
    else:
        assert m <= 0


@given(st.integers(min_value=0, max_value=300), st.booleans())
def test_classification_is_monotonic_in_severity(months: int, derogation: bool) -> None:
    alert = classify(months, derogation, T)
    if months >= 72:
        assert alert is AlertType.DEPASSEMENT
    elif months >= 69:
        assert alert is AlertType.SIX_ANS
    elif 33 <= months < 36 and not derogation:
        assert alert is AlertType.TROIS_ANS
    else:
        assert alert is None
