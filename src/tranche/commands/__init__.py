"""Command groups of the ``tranche`` CLI, one module each (``outbox``, ``job``, ``doctoral``…).

Each module defines ``NAME`` and ``app`` (a ``typer.Typer``); :func:`register_all`
mounts every one, so adding a group never means editing ``cli.py``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

__all__ = ["register_all"]


def register_all(root: typer.Typer) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        root.add_typer(module.app, name=module.NAME)
