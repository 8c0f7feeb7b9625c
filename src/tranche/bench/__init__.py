"""Benchmark implementations; each module exposes ``register(app)`` for ``tranche bench``."""

__all__: list[str] = []  # nothing re-exported: the public API is the submodules
