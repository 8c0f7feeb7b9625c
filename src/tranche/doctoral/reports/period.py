"""The month a report covers: parsing ``YYYY-MM``, its bounds, its French name, its file name.

The owners' timestamps are Java ``LocalDateTime`` columns (the local time of the
portal's services), so a month is the half-open range of naive local datetimes
``[first day 00:00, first day of next month 00:00)`` — compared to the columns
as they are, with no time-zone conversion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

__all__ = ["FRENCH_MONTHS", "Month", "MonthSyntaxError"]

FRENCH_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_PATTERN = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class MonthSyntaxError(ValueError):
    """A month parameter that is not ``YYYY-MM``."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        found = _PATTERN.match(text.strip()) if isinstance(text, str) else None
        if found is None or not 2000 <= int(found.group(1)) <= 2999:
            raise MonthSyntaxError(f"month must be YYYY-MM (e.g. 2025-02), got {text!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def before(cls, day: date) -> Month:
        """The calendar month before the one ``day`` is in (what a run on the 1st reports on)."""
        return cls(day.year, day.month).previous

    @property
    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    @property
    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the next month."""
        return self.next.start

    @property
    def label(self) -> str:
        """« février 2025 »."""
        return f"{FRENCH_MONTHS[self.month - 1]} {self.year}"

    @property
    def file_name(self) -> str:
        return f"rapport_{self.year:04d}_{self.month:02d}.pdf"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
