"""Text no database column can hold, refused before it reaches one.

PostgreSQL rejects NUL in a text column or a bound parameter, and a lone surrogate
(which JSON's ``\\ud800`` escape produces) has no UTF-8 encoding: both used to surface
as a 500 from the driver. Every service checks its request texts with this one rule.
"""

from __future__ import annotations

__all__ = ["UNSTORABLE_MESSAGE", "storable", "unstorable_reason"]

UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"


def unstorable_reason(text: str) -> str | None:
    """``"NUL"`` or ``"an unpaired surrogate"`` when ``text`` cannot be stored, else None."""
    if "\x00" in text:
        return "NUL"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "an unpaired surrogate"
    return None


def storable(text: str) -> bool:
    """Whether PostgreSQL, MariaDB and SQLite can all hold ``text``."""
    return unstorable_reason(text) is None
