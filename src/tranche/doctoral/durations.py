"""Thesis-duration rules: whole months since the first enrollment, and which alert they call for.

Pure functions, so the boundaries (32.9, 33, 35.9, 36 … 72 months) are tested
without a database. A month is a calendar month counted from the day of the
first enrollment, clamped to the end of shorter months: someone first enrolled
on 31 January completes a month on 28 (or 29) February, not on 3 March.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

__all__ = [
    "AlertType",
    "Thresholds",
    "add_months",
    "classify",
    "describe_duration",
    "priority_of",
    "whole_months",
]


class AlertType(StrEnum):
    """``alerte_duree_envoyee.type_alerte`` values (the original batch-service's names)."""

    TROIS_ANS = "3_ANS"
    SIX_ANS = "6_ANS"
    DEPASSEMENT = "DEPASSEMENT"


@dataclass(frozen=True)
class Thresholds:
    """Alert windows in whole months: [three_from, three_until), [six_from, max), ≥ max."""

    three_from: int = 33
    three_until: int = 36
    six_from: int = 69
    max_months: int = 72

    def __post_init__(self) -> None:
        if not 0 < self.three_from < self.three_until <= self.six_from < self.max_months:
            raise ValueError(
                "thresholds must satisfy 0 < three_from < three_until <= six_from < max_months"
            )


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


def classify(months: int, derogation: bool, t: Thresholds) -> AlertType | None:
    """The alert ``months`` of doctorate call for, or None.

    A derogation (``inscriptions.derogation = 1``, granted by the PED) lifts the
    3-year alert only: the 6-year limit is absolute.
    """
    if months >= t.max_months:
        return AlertType.DEPASSEMENT
    if months >= t.six_from:
        return AlertType.SIX_ANS
    if t.three_from <= months < t.three_until and not derogation:
        return AlertType.TROIS_ANS
    return None


def priority_of(alert: AlertType) -> str:
    """notification-service's ``priorite`` for an alert."""
    return {
        AlertType.TROIS_ANS: "NORMALE",
        AlertType.SIX_ANS: "HAUTE",
        AlertType.DEPASSEMENT: "URGENTE",
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
