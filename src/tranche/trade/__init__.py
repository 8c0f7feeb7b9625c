"""tranche.trade — the trade service (seed 002): trade orders, executions, and bulk
submission of executions to the execution service."""

__all__: list[str] = []  # nothing re-exported: the public API is the submodules
