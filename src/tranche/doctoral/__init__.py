"""tranche.doctoral"""

__all__: list[str] = []  # nothing re-exported: the public API is the submodules
