"""dataConsistencyJob's checks, one module each, and what they share (anomalies, notices, PDF)."""

__all__: list[str] = []
