"""Command groups of the ``tranche`` CLI.

Cross-service groups live here, one module each (``outbox``, ``bench``); each
service owns its own groups in ``tranche.<service>.cli`` / ``*_cli`` modules
(``tranche.doctoral.cli`` → ``tranche doctoral …``, ``tranche.doctoral.job_cli``
→ ``tranche job …``). Every such module defines ``NAME`` and ``app`` (a
``typer.Typer``); :func:`register_all` mounts them all, so adding a group never
means editing ``cli.py``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

__all__ = ["SERVICE_CLI_MODULES", "register_all"]

SERVICE_CLI_MODULES = (
    "tranche.doctoral.cli",
    "tranche.doctoral.job_cli",
    "tranche.doctoral.archive_cli",
)


def register_all(root: typer.Typer) -> None:
    names = [f"{__name__}.{m.name}" for m in pkgutil.iter_modules(__path__)]
    for name in sorted([*names, *SERVICE_CLI_MODULES]):
        module = importlib.import_module(name)
        root.add_typer(module.app, name=module.NAME)
