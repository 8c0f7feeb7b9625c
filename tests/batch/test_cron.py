"""Quartz cron: the seed's expressions, the special forms, errors, DST, and croniter agreement."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from tranche.batch import CronExpression, CronSyntaxError, next_fire_time

# The doctoral service's five schedules, as the seed (and the original's @Scheduled) spell them.
SEED = {
    "tokenCleanupJob": "0 0 2 * * ?",
    "dureeDoctoratAlertJob": "0 0 8 ? * MON",
    "monthlyReportJob": "0 0 9 1 * ?",
    "archiveJob": "0 0 3 1 1,4,7,10 ?",
    "dataConsistencyJob": "0 0 23 * * ?",
}
START = datetime(2024, 12, 30, 12, 0, tzinfo=UTC)


def fires(expr: str, after: datetime = START, n: int = 4, zone: str = "UTC") -> list[datetime]:
    return CronExpression.parse(expr, zone).fire_times(after, n)


def test_the_seed_expressions_fire_when_the_seed_says() -> None:
    paris = "Europe/Paris"
    assert [t.isoformat() for t in fires(SEED["tokenCleanupJob"], n=2, zone=paris)] == [
        "2024-12-31T02:00:00+01:00",
        "2025-01-01T02:00:00+01:00",
    ]
    mondays = fires(SEED["dureeDoctoratAlertJob"], n=3, zone=paris)
    assert [t.date() for t in mondays] == [date(2025, 1, 6), date(2025, 1, 13), date(2025, 1, 20)]
    assert all(t.hour == 8 for t in mondays)
    monthly = fires(SEED["monthlyReportJob"], n=2, zone=paris)
    assert [(t.month, t.day, t.hour) for t in monthly] == [(1, 1, 9), (2, 1, 9)]
    quarterly = fires(SEED["archiveJob"], n=5, zone=paris)
    assert [(t.year, t.month) for t in quarterly] == [
        (2025, 1), (2025, 4), (2025, 7), (2025, 10), (2026, 1),
    ]  # fmt: skip
    assert fires(SEED["dataConsistencyJob"], n=1)[0] == datetime(2024, 12, 30, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0 0 12 L * ?", ["2025-01-31", "2025-02-28", "2025-03-31"]),
        ("0 0 12 L-2 * ?", ["2025-01-29", "2025-02-26", "2025-03-29"]),
        ("0 0 12 LW * ?", ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-30"]),
        ("0 0 12 1W * ?", ["2025-01-01", "2025-02-03", "2025-03-03", "2025-04-01"]),
        ("0 0 12 15W * ?", ["2025-01-15", "2025-02-14", "2025-03-14", "2025-04-15"]),
        ("0 0 12 ? * 6L", ["2025-01-31", "2025-02-28", "2025-03-28"]),
        ("0 0 12 ? * FRIL", ["2025-01-31", "2025-02-28", "2025-03-28"]),
        ("0 0 12 ? * MON#2", ["2025-01-13", "2025-02-10", "2025-03-10"]),
        ("0 0 12 ? * 2#5", ["2025-03-31", "2025-06-30", "2025-09-29"]),
        ("0 0 12 ? * L", ["2025-01-04", "2025-01-11", "2025-01-18"]),
        ("0 0 12 ? * FRI-MON", ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"]),
        ("0 0 12 ? * 6-2", ["2025-01-03", "2025-01-04", "2025-01-05", "2025-01-06"]),
        ("0 0 12 ? * */2", ["2025-01-02", "2025-01-04", "2025-01-05", "2025-01-07"]),
        ("0 0 12 29 2 ? 2028/4", ["2028-02-29", "2032-02-29", "2036-02-29"]),
        ("0 0 12 1 jan,jul ?", ["2025-01-01", "2025-07-01", "2026-01-01"]),
        ("0 0 12 30-2 * ?", ["2025-01-01", "2025-01-02", "2025-01-30", "2025-01-31"]),
    ],
)
def test_special_forms(expr: str, expected: list[str]) -> None:
    after = datetime(2025, 1, 1, tzinfo=UTC)
    assert [t.date().isoformat() for t in fires(expr, after, len(expected))] == expected


def test_time_fields_steps_ranges_and_wrapping() -> None:
    after = datetime(2025, 1, 1, 21, 59, 58, tzinfo=UTC)
    assert [t.time().isoformat() for t in fires("*/20 0 22-2/2 * * ?", after, 5)] == [
        "22:00:00", "22:00:20", "22:00:40", "00:00:00", "00:00:20",
    ]  # fmt: skip
    assert [t.minute for t in fires("0 5/20 * * * ?", after, 3)] == [5, 25, 45]
    assert fires("0 0 0 1 1 ? 2020", after, 1) == []
    assert fires("0 0 0 30 2 ?", after, 1) == []
    assert next_fire_time("0 0 0 * * ?", START) == datetime(2024, 12, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 2 * *", "expected 6 or 7 fields"),
        ("0 0 2 * * ? 2025 x", "expected 6 or 7 fields"),
        ("0 0 2 ? * ?", "exactly one of day-of-month and day-of-week"),
        ("0 0 2 * * MON", "exactly one of day-of-month and day-of-week"),
        ("60 0 2 * * ?", "seconds: 60 is outside 0-59"),
        ("0 0 24 * * ?", "hours: 24 is outside 0-23"),
        ("0 0 2 0 * ?", "day-of-month: 0 is outside 1-31"),
        ("0 0 2 * 13 ?", "month: 13 is outside 1-12"),
        ("0 0 2 ? * 8", "day-of-week: 8 is outside 1-7"),
        ("0 0 2 ? * MOON", "day-of-week: 'MOON' is not a number or a name"),
        ("0 */0 2 * * ?", "minutes: step '0'"),
        ("? 0 2 * * ?", "seconds: '?' is only allowed"),
        ("0 0 2 L,3 * ?", "L and W cannot be combined"),
        ("0 0 2 ? * MON#6", "the n in day#n must be 1-5"),
        ("0 0 2 1,,2 * ?", "empty list item"),
        ("0 0 2 \\* \\* ?", "is Markdown escaping"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronSyntaxError, match=message.replace("?", "\\?").replace("*", "\\*")):
        CronExpression.parse(expr)


def test_daylight_saving_gap_fires_at_the_jump_and_repeat_fires_once() -> None:
    paris = "Europe/Paris"
    spring = fires("0 30 2 * * ?", datetime(2025, 3, 29, tzinfo=UTC), 3, paris)
    assert [t.isoformat() for t in spring] == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",  # 02:30 does not exist that night
        "2025-03-31T02:30:00+02:00",
    ]
    autumn = fires("0 30 2 * * ?", datetime(2025, 10, 25, tzinfo=UTC), 3, paris)
    assert [t.isoformat() for t in autumn] == [
        "2025-10-25T02:30:00+02:00",
        "2025-10-26T02:30:00+02:00",  # the first of the two 02:30s
        "2025-10-27T02:30:00+01:00",
    ]
    # Asked from inside the repeated hour, the second pass does not fire again.
    inside = datetime(2025, 10, 26, 1, 15, tzinfo=UTC)  # 02:15 CET, second pass
    assert next_fire_time("0 30 2 * * ?", inside, paris) == datetime(
        2025, 10, 27, 1, 30, tzinfo=UTC
    )
    hourly = fires("0 0 * * * ?", datetime(2025, 10, 25, 23, 30, tzinfo=UTC), 4, paris)
    assert [t - hourly[0] for t in hourly] == [timedelta(hours=h) for h in range(4)]


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_time("0 0 2 * * ?", datetime(2025, 1, 1))


# --- agreement with croniter on the subset both support -------------------------------


def _time_field(low: int, high: int) -> st.SearchStrategy[str]:
    value = st.integers(low, high)
    step = st.integers(1, high - low + 1)
    # a < b: croniter reads a degenerate range "5-5" as "*" (Quartz, and we, read {5}).
    pair = st.tuples(value, value).filter(lambda p: p[0] != p[1]).map(sorted)
    return st.one_of(
        st.just("*"),
        value.map(str),
        pair.map(lambda p: f"{p[0]}-{p[1]}"),
        st.lists(value, min_size=2, max_size=4, unique=True).map(lambda v: ",".join(map(str, v))),
        step.map(lambda s: f"*/{s}"),
        st.tuples(value, step).map(lambda p: f"{p[0]}/{p[1]}"),
        st.tuples(pair, step).map(lambda p: f"{p[0][0]}-{p[0][1]}/{p[1]}"),
    )


_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]


@st.composite
def quartz_and_croniter(draw: st.DrawFn) -> tuple[str, str]:
    sec, minute = draw(_time_field(0, 59)), draw(_time_field(0, 59))
    hour = draw(_time_field(0, 23))
    month = draw(_time_field(1, 12))
    if draw(st.booleans()):
        dom = draw(st.one_of(_time_field(1, 28), st.just("L")))
        quartz_dow = cron_dow = "?"
        quartz_dom = cron_dom = dom
    else:
        quartz_dom, cron_dom = "?", "*"
        kind = draw(st.sampled_from(["star", "value", "name", "range", "list", "nth"]))
        day = st.integers(1, 7)
        if kind == "star":
            quartz_dow = cron_dow = "*"
        elif kind == "value":
            d = draw(day)
            quartz_dow, cron_dow = str(d), str(d - 1)
        elif kind == "name":
            d = draw(day)
            quartz_dow = cron_dow = _DAY_NAMES[d - 1]
        elif kind == "range":
            a, b = sorted(draw(st.tuples(day, day).filter(lambda p: p[0] != p[1])))
            quartz_dow, cron_dow = f"{a}-{b}", f"{a - 1}-{b - 1}"
        elif kind == "list":
            days = draw(st.lists(day, min_size=2, max_size=4, unique=True))
            quartz_dow = ",".join(map(str, days))
            cron_dow = ",".join(str(d - 1) for d in days)
        else:
            d, n = draw(day), draw(st.integers(1, 4))
            quartz_dow, cron_dow = f"{d}#{n}", f"{d - 1}#{n}"
    quartz = f"{sec} {minute} {hour} {quartz_dom} {month} {quartz_dow}"
    reference = f"{sec} {minute} {hour} {cron_dom} {month} {cron_dow}"
    return quartz, reference


@settings(max_examples=200, deadline=None)
@given(
    pair=quartz_and_croniter(),
    start=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_next_fire_times_agree_with_croniter(pair: tuple[str, str], start: datetime) -> None:
    quartz, reference = pair
    after = start.replace(tzinfo=UTC)
    ours = CronExpression.parse(quartz).fire_times(after, 4)
    it = croniter(reference, after, second_at_beginning=True)
    theirs = [it.get_next(datetime) for _ in range(4)]
    assert ours == theirs, (quartz, reference, after)
