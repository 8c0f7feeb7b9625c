"""The monthly report: its month, statistics, PDF, files on disk and their delivery by mail."""

__all__: list[str] = []
