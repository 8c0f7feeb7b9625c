"""The one clock: every "now" in tranche comes from :func:`utc_now`.

Components that need the time take a ``clock: Clock = utc_now`` argument, so tests
inject a fixed or stepping clock instead of patching :mod:`datetime`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

#: A source of "now": returns a timezone-aware UTC datetime.
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
