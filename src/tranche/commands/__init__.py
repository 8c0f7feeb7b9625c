"""Command groups of the ``tranche`` CLI, imported only when used.

Cross-service groups live here, one module each (``outbox``, ``bench``); each
service owns its own groups in ``tranche.<service>.cli`` / ``*_cli`` modules
(``tranche.doctoral.cli`` → ``tranche doctoral …``, ``tranche.doctoral.job_cli``
→ ``tranche job …``). Every such module defines ``NAME`` and ``app`` (a
``typer.Typer``) and is listed in :data:`GROUPS`, so adding a group never means
editing ``cli.py``.

Why lazy: the doctoral groups import the report and chart stack (matplotlib,
reportlab) and every service's app; importing them for ``tranche serve
execution`` made each start of the CLI take seconds, paid by every subprocess
the tests and benchmarks start. :class:`LazyGroups` is click's documented
lazy-loading group pattern on Typer's group class: a group's module is imported
when the group is invoked (or listed, by ``--help``).
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["GROUPS", "LazyGroups"]

#: Group name → module defining ``NAME`` (the same name) and ``app``.
GROUPS: dict[str, str] = {
    "archive": "tranche.doctoral.archive_cli",
    "bench": "tranche.commands.bench",
    "doctoral": "tranche.doctoral.cli",
    "job": "tranche.doctoral.job_cli",
    "outbox": "tranche.commands.outbox",
}


class LazyGroups(TyperGroup):
    """The root command: its own commands plus the :data:`GROUPS`, each loaded on first use."""

    # ``Any``: Typer types these with its vendored copy of click (``typer._click``), a
    # private module; the values are whatever the group class passes.
    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in GROUPS:
            return command
        module: Any = importlib.import_module(GROUPS[cmd_name])
        if cmd_name != module.NAME:
            raise RuntimeError(f"{GROUPS[cmd_name]} names its group {module.NAME!r}")
        loaded = typer.main.get_command(module.app)
        loaded.name = cmd_name
        self.add_command(loaded, cmd_name)
        return loaded
