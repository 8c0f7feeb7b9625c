from __future__ import annotations

import importlib
import pkgutil

import pytest

import tranche


def _walk() -> list[pkgutil.ModuleInfo]:
    return sorted(
        (
            m
            for m in pkgutil.walk_packages(tranche.__path__, "tranche.")
            if not m.name.endswith("__main__")
        ),
        key=lambda m: m.name,
    )


def _modules() -> list[str]:
    return [m.name for m in _walk()]


def _public_packages() -> list[str]:
    """``tranche`` and every package under it whose dotted path has no ``_`` part."""
    packages = [m.name for m in _walk() if m.ispkg]
    return ["tranche", *(p for p in packages if not any(s.startswith("_") for s in p.split(".")))]


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports_and_exports_what_it_names(name: str) -> None:
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported}"


def test_every_package_under_src_tranche_is_walked() -> None:
    packages = set(_public_packages())
    assert {"tranche", "tranche.core", "tranche.core.outbox", "tranche.batch"} <= packages
    assert {"tranche.execution", "tranche.trade", "tranche.doctoral"} <= packages


@pytest.mark.parametrize("name", _public_packages())
def test_every_public_package_declares_its_api(name: str) -> None:
    module = importlib.import_module(name)
    assert "__all__" in vars(module), f"{name} has no __all__: say what it exports"
