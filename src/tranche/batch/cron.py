"""Quartz cron expressions: parsing and next-fire computation as pure functions.

Fields: ``seconds minutes hours day-of-month month day-of-week [year]``. Each accepts ``*``,
values, ``a-b`` ranges (wrapping, e.g. ``22-2`` or ``FRI-MON``), lists and ``/`` steps
(``*/5``, ``10/15``, ``1-30/2``); months take ``JAN``-``DEC``, days of week ``SUN``-``SAT``
or ``1``-``7`` (1 = Sunday, Quartz's numbering). Exactly one of day-of-month and day-of-week
is ``?``. Day-of-month also takes ``L`` (last day), ``L-3``, ``15W`` (nearest weekday, never
crossing the month) and ``LW``; day-of-week takes ``6L`` (last Friday), ``MON#2`` (second
Monday) and ``L`` (Saturday, as in Quartz).

Why hand-written rather than APScheduler's ``CronTrigger`` underneath: a translation could
not be exact. APScheduler numbers weekdays from Monday = 0 and refuses wrapping weekday
ranges, has no ``W``, ``LW`` or ``L-n``, and ANDs day-of-month with day-of-week; every field
would have to be expanded to explicit values and the special forms rejected, leaving a
translator as large as this evaluator and less faithful. Here each field is a set of
values, and :meth:`CronExpression.next_fire_time` walks year → month → day → hour → minute →
second, jumping straight to the next allowed value; it is checked against ``croniter`` (the
independent reference) on random expressions of the subset both support.

Time zones: wall times are read in the expression's zone. A wall time skipped by a
daylight-saving jump fires at the instant of the jump; one that occurs twice fires once, at
its first occurrence.
"""

from __future__ import annotations

import calendar
import functools
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from tranche.batch.errors import CronSyntaxError

__all__ = ["CronExpression", "next_fire_time"]

_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELDS = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_BOUNDS = {
    "seconds": (0, 59),
    "minutes": (0, 59),
    "hours": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, 2199),
}
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class _DaySpec:
    """Day-of-month or day-of-week: ``kind`` any | set | last | weekday | nth."""

    kind: str
    values: tuple[int, ...] = ()
    offset: int = 0


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, field: str, problem: str) -> CronSyntaxError:
        return CronSyntaxError(self.expression, f"{field}: {problem}")

    def number(self, field: str, text: str) -> int:
        names = _MONTHS if field == "month" else _DAYS if field == "day-of-week" else {}
        if text in names:
            return names[text]
        if not text.isdigit():
            raise self.fail(field, f"'{text}' is not a number" + (" or a name" if names else ""))
        low, high = _BOUNDS[field]
        value = int(text)
        if not low <= value <= high:
            raise self.fail(field, f"{value} is outside {low}-{high}")
        return value

    def values(self, field: str, text: str) -> tuple[int, ...]:
        low, high = _BOUNDS[field]
        found: set[int] = set()
        for item in text.split(","):
            if not item:
                raise self.fail(field, f"empty list item in '{text}'")
            base, _, step_text = item.partition("/")
            step = 1
            if step_text or item.endswith("/"):
                if not step_text.isdigit() or not 0 < int(step_text) <= high - low + 1:
                    raise self.fail(field, f"step '{step_text}' must be 1-{high - low + 1}")
                step = int(step_text)
            if base in ("*", ""):
                start, end = low, high
            elif "-" in base:
                a, _, b = base.partition("-")
                start, end = self.number(field, a), self.number(field, b)
            else:
                start = self.number(field, base)
                end = high if step_text else start
            span = (end - start) % (high - low + 1)  # wrapping ranges: 22-2, FRI-MON
            found.update(
                low + (start - low + k) % (high - low + 1) for k in range(0, span + 1, step)
            )
        return tuple(sorted(found))

    def day_of_month(self, text: str) -> _DaySpec:
        field = "day-of-month"
        if text in ("?", "*"):
            return _DaySpec("any")
        if "L" in text or "W" in text:
            if "," in text or "/" in text:
                raise self.fail(field, f"'{text}': L and W cannot be combined with lists or steps")
            if text == "L":
                return _DaySpec("last")
            if text == "LW":
                return _DaySpec("weekday", offset=-1)
            if text.startswith("L-"):
                offset = text[2:]
                if not offset.isdigit() or int(offset) > 30:
                    raise self.fail(field, f"'{text}': the offset in L-n must be 0-30")
                return _DaySpec("last", offset=int(offset))
            if text.endswith("W") and text[:-1].isdigit():
                return _DaySpec("weekday", (self.number(field, text[:-1]),))
            raise self.fail(field, f"'{text}' is not L, L-n, LW or nW")
        return _DaySpec("set", self.values(field, text))

    def day_of_week(self, text: str) -> _DaySpec:
        field = "day-of-week"
        if text in ("?", "*"):
            return _DaySpec("any")
        if "#" in text or "L" in text:
            if "," in text or "/" in text or "-" in text:
                raise self.fail(field, f"'{text}': L and # cannot be combined with lists/ranges")
            if text == "L":
                return _DaySpec("set", (7,))
            if text.endswith("L"):
                return _DaySpec("last", (self.number(field, text[:-1]),))
            day, _, nth = text.partition("#")
            if not nth.isdigit() or not 1 <= int(nth) <= 5:
                raise self.fail(field, f"'{text}': the n in day#n must be 1-5")
            return _DaySpec("nth", (self.number(field, day),), int(nth))
        return _DaySpec("set", self.values(field, text))


@dataclass(frozen=True)
class CronExpression:
    """A parsed Quartz expression, read in ``zone``; immutable and hashable."""

    expression: str
    zone: tzinfo
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: _DaySpec
    months: tuple[int, ...]
    day_of_week: _DaySpec
    years: tuple[int, ...] | None

    @classmethod
    def parse(cls, expression: str, zone: str | tzinfo = "UTC") -> CronExpression:
        """Parse ``expression`` or raise :class:`CronSyntaxError` naming the faulty field."""
        if not isinstance(expression, str):
            raise CronSyntaxError(repr(expression), "a cron expression is a string")
        if "\\" in expression:
            raise CronSyntaxError(
                expression,
                "backslashes are not cron syntax ('\\*' is Markdown escaping; write '*')",
            )
        fields = expression.upper().split()
        if len(fields) not in (6, 7):
            raise CronSyntaxError(
                expression,
                f"expected 6 or 7 fields ({' '.join(_FIELDS)}), got {len(fields)}",
            )
        p = _Parser(expression)
        for name, text in zip(_FIELDS, fields, strict=False):
            if text == "?" and name not in ("day-of-month", "day-of-week"):
                raise p.fail(name, "'?' is only allowed in day-of-month or day-of-week")
        dom_text, dow_text = fields[3], fields[5]
        if (dom_text == "?") == (dow_text == "?"):
            raise CronSyntaxError(
                expression,
                "exactly one of day-of-month and day-of-week must be '?' (Quartz cannot "
                "combine them)",
            )
        return cls(
            expression=expression,
            zone=ZoneInfo(zone) if isinstance(zone, str) else zone,
            seconds=p.values("seconds", fields[0]),
            minutes=p.values("minutes", fields[1]),
            hours=p.values("hours", fields[2]),
            day_of_month=p.day_of_month(dom_text),
            months=p.values("month", fields[4]),
            day_of_week=p.day_of_week(dow_text),
            years=p.values("year", fields[6]) if len(fields) == 7 else None,
        )

    # ----------------------------------------------------------------- evaluation

    def days(self, year: int, month: int) -> tuple[int, ...]:
        """Days of ``month`` on which the expression fires (any time of day)."""
        return _days(self.day_of_month, self.day_of_week, year, month)

    def next_local(self, start: datetime) -> datetime | None:
        """Smallest naive wall time >= ``start`` (whole seconds) matching every field."""
        t = start
        last_year = self.years[-1] if self.years else start.year + 400
        while t.year <= last_year:
            if self.years is not None and t.year not in self.years:
                year = _next(self.years, t.year)
                if year is None:
                    return None
                t = datetime(year, 1, 1)
                continue
            month = _next(self.months, t.month)
            if month is None:
                t = datetime(t.year + 1, 1, 1)
                continue
            if month != t.month:
                t = datetime(t.year, month, 1)
                continue
            day = _next(self.days(t.year, t.month), t.day)
            if day is None:
                t = _next_month(t)
                continue
            if day != t.day:
                t = datetime(t.year, t.month, day)
                continue
            hour = _next(self.hours, t.hour)
            if hour is None:
                t = datetime(t.year, t.month, t.day) + timedelta(days=1)
                continue
            if hour != t.hour:
                t = t.replace(hour=hour, minute=0, second=0)
                continue
            minute = _next(self.minutes, t.minute)
            if minute is None:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if minute != t.minute:
                t = t.replace(minute=minute, second=0)
                continue
            second = _next(self.seconds, t.second)
            if second is None:
                t = t.replace(second=0) + timedelta(minutes=1)
                continue
            return t.replace(second=second)
        return None

    def next_fire_time(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware), in the expression's zone."""
        if after.tzinfo is None:
            raise ValueError("next_fire_time needs a timezone-aware datetime")
        start = after.astimezone(self.zone).replace(tzinfo=None, microsecond=0) + _SECOND
        while True:
            wall = self.next_local(start)
            if wall is None:
                return None
            instant = _instant(wall, self.zone)
            if instant > after:
                return instant.astimezone(self.zone)
            # Only when ``after`` lies in a repeated (fall-back) hour: skip the first pass.
            start = wall + _SECOND

    def fire_times(self, after: datetime, count: int) -> list[datetime]:
        out: list[datetime] = []
        current: datetime | None = after
        while current is not None and len(out) < count:
            current = self.next_fire_time(current)
            if current is not None:
                out.append(current)
        return out


def next_fire_time(
    expression: str | CronExpression, after: datetime, zone: str | tzinfo = "UTC"
) -> datetime | None:
    """Pure: the first time ``expression`` fires strictly after ``after``."""
    cron = (
        expression
        if isinstance(expression, CronExpression)
        else CronExpression.parse(expression, zone)
    )
    return cron.next_fire_time(after)


def _next(values: tuple[int, ...], current: int) -> int | None:
    i = bisect_left(values, current)
    return values[i] if i < len(values) else None


def _next_month(t: datetime) -> datetime:
    return datetime(t.year + t.month // 12, t.month % 12 + 1, 1)


def _quartz_weekday(year: int, month: int, day: int) -> int:
    return (calendar.weekday(year, month, day) + 1) % 7 + 1  # Monday=0 → 2 … Sunday=6 → 1


@functools.lru_cache(maxsize=4096)
def _days(dom: _DaySpec, dow: _DaySpec, year: int, month: int) -> tuple[int, ...]:
    last = calendar.monthrange(year, month)[1]
    if dom.kind != "any":
        if dom.kind == "set":
            return tuple(d for d in dom.values if d <= last)
        if dom.kind == "last":
            return (last - dom.offset,) if last - dom.offset >= 1 else ()
        target = last if dom.offset == -1 else dom.values[0]
        if target > last:
            return ()
        weekday = _quartz_weekday(year, month, target)
        if weekday == 7:  # Saturday → Friday, or Monday the 3rd if the 1st is a Saturday
            target = target + 2 if target == 1 else target - 1
        elif weekday == 1:  # Sunday → Monday, or Friday if Sunday is the last day
            target = target - 2 if target == last else target + 1
        return (target,)
    if dow.kind == "any":
        return tuple(range(1, last + 1))
    matching = [d for d in range(1, last + 1) if _quartz_weekday(year, month, d) in dow.values]
    if dow.kind == "set":
        return tuple(matching)
    if dow.kind == "last":
        return (matching[-1],)
    return (matching[dow.offset - 1],) if len(matching) >= dow.offset else ()


def _instant(wall: datetime, zone: tzinfo) -> datetime:
    """The instant of a wall time; a wall time inside a DST gap maps to the jump itself."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # Nonexistent: the offset changes between the two readings; find the change to the second.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    new_offset = high.astimezone(zone).utcoffset()
    while high - low > _SECOND:
        mid = low + (high - low) // 2
        mid = mid.replace(microsecond=0)
        if mid.astimezone(zone).utcoffset() == new_offset:
            high = mid
        else:
            low = mid
    return high
