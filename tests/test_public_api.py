from __future__ import annotations

import importlib
import pkgutil

import pytest

import tranche


def _modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.walk_packages(tranche.__path__, "tranche.")
        if not m.name.endswith("__main__")
    )


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports_and_exports_what_it_names(name: str) -> None:
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported}"
