"""Thesis-duration rules: which alert a doctorate of a given length calls for.

Two rules, chosen by ``DOCTORAL_DUREE_ALERT_RULE``:

* ``inscription-service`` (the default) is the owner's own rule (reference §3):
  years = days since ``date_premiere_inscription`` / 365.25; ≥ 2.5 →
  ``APPROCHE_3_ANS``, ≥ 5.5 → ``APPROCHE_6_ANS``, ≥ 6.0 → ``DEPASSE_6_ANS``
  (and the re-enrollment block). A derogation does not change the type (the
  owner ignores it too); it changes the wording.
* ``batch-service`` is the old batch service's rule in whole calendar months
  (33 / 69 / 72, a derogation lifts the 3-year reminder), kept for a school
  that relied on it.

Neither leaves a gap: each alert is due from its threshold until the next
one, not only within a three-month window, so a run missed, a late
validation or the old 36-68-month hole never lets a doctorant go unreminded
(each type is still sent once). Pure functions, so the boundaries are tested
without a database. A month is a calendar month counted from the day of the
first enrollment, clamped to the end of shorter months.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Protocol

__all__ = [
    "AlertRule",
    "AlertType",
    "OwnerThresholds",
    "Rule",
    "Thresholds",
    "add_months",
    "alert_type",
    "describe_duration",
    "priority_of",
    "whole_months",
    "years_since",
]

DAYS_PER_YEAR = 365.25


class AlertType(StrEnum):
    """The owner's ``alertes_duree.type`` values; the batch ledger stores the same names."""

    APPROCHE_3_ANS = "APPROCHE_3_ANS"
    APPROCHE_6_ANS = "APPROCHE_6_ANS"
    DEPASSE_6_ANS = "DEPASSE_6_ANS"


#: ``alerte_duree_envoyee.type_alerte`` as the old batch service (and our first version) wrote it.
_LEGACY_NAMES = {
    "3_ANS": AlertType.APPROCHE_3_ANS,
    "6_ANS": AlertType.APPROCHE_6_ANS,
    "DEPASSEMENT": AlertType.DEPASSE_6_ANS,
}


def alert_type(name: str) -> AlertType | None:
    """A stored type name (ours, the owner's or the old batch's) as an :class:`AlertType`."""
    if name in _LEGACY_NAMES:
        return _LEGACY_NAMES[name]
    try:
        return AlertType(name)
    except ValueError:
        return None


class Rule(StrEnum):
    OWNER = "inscription-service"
    LEGACY = "batch-service"


class AlertRule(Protocol):
    """What the alert job asks of a rule."""

    def classify(self, start: date, on: date, derogation: bool) -> AlertType | None: ...

    def three_years_passed(self, start: date, on: date) -> bool: ...

    def limit_date(self, start: date) -> date: ...

    def threshold_date(self, alert: AlertType, start: date) -> date: ...


def years_since(start: date, on: date) -> float:
    """The owner's measure: days elapsed / 365.25."""
    return (on - start).days / DAYS_PER_YEAR


def _after_years(start: date, years: float) -> date:
    """The first day on which :func:`years_since` reaches ``years``."""
    return start + timedelta(days=math.ceil(years * DAYS_PER_YEAR))


@dataclass(frozen=True)
class OwnerThresholds:
    """inscription-service's thresholds, in years of 365.25 days."""

    three_years: float = 2.5
    six_years: float = 5.5
    max_years: float = 6.0

    def __post_init__(self) -> None:
        if not 0 < self.three_years < self.six_years < self.max_years:
            raise ValueError("thresholds must satisfy 0 < three_years < six_years < max_years")

    def classify(self, start: date, on: date, derogation: bool) -> AlertType | None:
        years = years_since(start, on)
        if years >= self.max_years:
            return AlertType.DEPASSE_6_ANS
        if years >= self.six_years:
            return AlertType.APPROCHE_6_ANS
        if years >= self.three_years:
            return AlertType.APPROCHE_3_ANS
        return None

    def three_years_passed(self, start: date, on: date) -> bool:
        return years_since(start, on) >= 3.0

    def limit_date(self, start: date) -> date:
        return _after_years(start, self.max_years)

    def threshold_date(self, alert: AlertType, start: date) -> date:
        if alert is AlertType.APPROCHE_3_ANS:
            return _after_years(start, 3.0)
        return self.limit_date(start)


@dataclass(frozen=True)
class Thresholds:
    """The old batch service's rule in whole months.

    The 3-year reminder is due from ``three_from`` until the 6-year one (a
    doctorant first seen past ``three_until`` is still told, with the text for
    a passed threshold); a derogation lifts it. ``six_from`` and ``max_months``
    as before.
    """

    three_from: int = 33
    three_until: int = 36
    six_from: int = 69
    max_months: int = 72

    def __post_init__(self) -> None:
        if not 0 < self.three_from < self.three_until <= self.six_from < self.max_months:
            raise ValueError(
                "thresholds must satisfy 0 < three_from < three_until <= six_from < max_months"
            )

    def classify(self, start: date, on: date, derogation: bool) -> AlertType | None:
        months = whole_months(start, on)
        if months >= self.max_months:
            return AlertType.DEPASSE_6_ANS
        if months >= self.six_from:
            return AlertType.APPROCHE_6_ANS
        if months >= self.three_from and not derogation:
            return AlertType.APPROCHE_3_ANS
        return None

    def three_years_passed(self, start: date, on: date) -> bool:
        return whole_months(start, on) >= self.three_until

    def limit_date(self, start: date) -> date:
        return add_months(start, self.max_months)

    def threshold_date(self, alert: AlertType, start: date) -> date:
        if alert is AlertType.APPROCHE_3_ANS:
            return add_months(start, self.three_until)
        return self.limit_date(start)


def add_months(start: date, months: int) -> date:
    """``start`` plus ``months`` calendar months, the day clamped to the target month's length."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(start.day, last))


def whole_months(start: date, on: date) -> int:
    """Complete months from ``start`` to ``on`` (negative when ``on`` is earlier)."""
    months = (on.year - start.year) * 12 + (on.month - start.month)
    if months > 0 and add_months(start, months) > on:
        months -= 1
    elif months < 0 and add_months(start, months) < on:
        months += 1
    return months


def priority_of(alert: AlertType) -> str:
    """notification-service's ``priorite`` for an alert."""
    return {
        AlertType.APPROCHE_3_ANS: "NORMALE",
        AlertType.APPROCHE_6_ANS: "HAUTE",
        AlertType.DEPASSE_6_ANS: "URGENTE",
    }[alert]


def describe_duration(months: int) -> str:
    """``"2 ans 10 mois"``, ``"1 an"``, ``"7 mois"`` (French, as the portal speaks)."""
    years, rest = divmod(max(months, 0), 12)
    parts = []
    if years:
        parts.append(f"{years} an{'s' if years > 1 else ''}")
    if rest or not years:
        parts.append(f"{rest} mois")
    return " ".join(parts)
