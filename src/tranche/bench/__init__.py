"""Benchmark implementations; each module exposes ``register(app)`` for ``tranche bench``."""
