"""``tranche bench <name>``: one benchmark per claim, implemented in ``tranche.bench.<name>``.

Each benchmark module defines ``register(app: typer.Typer) -> None`` that adds
its command; they are discovered so that adding one never edits this file.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

import tranche.bench

__all__ = ["NAME", "app"]

NAME = "bench"
app = typer.Typer(
    no_args_is_help=True,
    help="Benchmarks: each compares paths in one run and writes docs/benchmarks.md.",
)

for _info in sorted(pkgutil.iter_modules(tranche.bench.__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"tranche.bench.{_info.name}").register(app)
