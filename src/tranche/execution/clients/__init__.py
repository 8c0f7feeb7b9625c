"""Outbound HTTP clients: the security service (tickers) and the trade service (fills)."""
