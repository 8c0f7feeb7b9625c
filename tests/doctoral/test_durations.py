"""Month arithmetic and alert classification: the boundaries the issue names, and properties."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tranche.doctoral.durations import (
    AlertType,
    OwnerThresholds,
    Thresholds,
    add_months,
    alert_type,
    describe_duration,
    priority_of,
    whole_months,
    years_since,
)

T = Thresholds()
OWNER = OwnerThresholds()
A3, A6, D6 = AlertType.APPROCHE_3_ANS, AlertType.APPROCHE_6_ANS, AlertType.DEPASSE_6_ANS
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
    ("days", "expected"),
    [
        (913, None),  # 2.4997 years
        (914, A3),  # 2.5024: the owner's 2.5
        (1095, A3),
        (1500, A3),  # the old batch's 36-68-month hole: still the 3-year type
        (2008, A3),
        (2009, A6),  # 5.5003
        (2191, A6),  # 5.9986
        (2192, D6),  # 6.0014: the owner's 6.0
        (4000, D6),
    ],
)
def test_owner_rule_boundaries(days: int, expected: AlertType | None) -> None:
    start = date(2019, 3, 1)
    on = start + timedelta(days=days)
    for derogation in (False, True):  # the owner ignores the derogation
        assert OWNER.classify(start, on, derogation) is expected


@pytest.mark.parametrize(
    ("months", "derogation", "expected"),
    [
        (32.9, False, None),
        (33, False, A3),
        (35.9, False, A3),
        (36, False, A3),  # no gap any more: told even if first seen after 36
        (50, False, A3),
        (68.9, False, A3),
        (33, True, None),
        (50, True, None),
        (69, False, A6),
        (71.9, False, A6),
        (69, True, A6),
        (72, False, D6),
        (72, True, D6),
        (90, False, D6),
        (0, False, None),
    ],
)
def test_legacy_rule_boundaries(
    months: float, derogation: bool, expected: AlertType | None
) -> None:
    start = started(months)
    assert whole_months(start, RUN) == int(months)
    assert T.classify(start, RUN, derogation) is expected


def test_stored_names_of_every_version_are_understood() -> None:
    assert alert_type("3_ANS") is A3 and alert_type("APPROCHE_3_ANS") is A3
    assert alert_type("6_ANS") is A6 and alert_type("DEPASSEMENT") is D6
    assert alert_type("DEPASSE_6_ANS") is D6 and alert_type("autre") is None


def test_threshold_dates() -> None:
    start = date(2020, 1, 1)
    assert OWNER.limit_date(start) == start + timedelta(days=2192)
    assert (
        years_since(start, OWNER.limit_date(start))
        >= 6.0
        > years_since(start, OWNER.limit_date(start) - timedelta(days=1))
    )
    assert T.threshold_date(A3, start) == date(2023, 1, 1)
    assert T.limit_date(start) == date(2026, 1, 1)


def test_month_end_is_clamped_not_rolled_over() -> None:
    assert add_months(date(2022, 1, 31), 1) == date(2022, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert whole_months(date(2022, 1, 31), date(2022, 2, 28)) == 1
    assert whole_months(date(2022, 1, 31), date(2022, 2, 27)) == 0
    assert whole_months(date(2022, 5, 31), date(2025, 2, 28)) == 33


def test_priorities_and_wording() -> None:
    assert [priority_of(a) for a in AlertType] == ["NORMALE", "HAUTE", "URGENTE"]
    assert OWNER.three_years_passed(date(2020, 1, 1), date(2023, 1, 2))
    assert describe_duration(34) == "2 ans 10 mois"
    assert describe_duration(12) == "1 an"
    assert describe_duration(7) == "7 mois"
    assert describe_duration(72) == "6 ans"


def test_bad_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="three_from"):
        Thresholds(three_from=36, three_until=33)
    with pytest.raises(ValueError, match="three_years"):
        OwnerThresholds(three_years=6.0)


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


@given(dates, st.integers(min_value=0, max_value=4000), st.booleans())
def test_no_gap_once_a_threshold_is_reached(start: date, days: int, derogation: bool) -> None:
    """Past 2.5 years there is always an alert due, and it never gets milder with time."""
    on = start + timedelta(days=days)
    later = on + timedelta(days=30)
    severity = {None: 0, A3: 1, A6: 2, D6: 3}
    for rule in (OWNER, T):
        assert (
            severity[rule.classify(start, on, derogation)]
            <= severity[rule.classify(start, later, derogation)]
        )
    years = years_since(start, on)
    alert = OWNER.classify(start, on, derogation)
    assert (alert is None) == (years < 2.5)
    assert (alert is D6) == (years >= 6.0)
    if not derogation and whole_months(start, on) >= 33:
        assert T.classify(start, on, derogation) is not None
