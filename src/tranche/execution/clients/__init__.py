"""Outbound HTTP clients: the security service (tickers) and the trade service (fills)."""

__all__: list[str] = []  # nothing re-exported: the public API is the submodules
