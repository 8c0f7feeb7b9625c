"""The registry of deployable services, in demo order (the execution service first,
since the trade service submits to it; the doctoral service talks to neither).

A service's module is imported when the service is first asked for: ``tranche serve
execution`` has no use for the doctoral service's report stack (matplotlib, reportlab),
whose import took seconds of every CLI start.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

from tranche.core.service import ServiceSpec

__all__ = ["SERVICES", "SERVICE_MODULES", "get_service"]

#: Service name → module defining its ``SPEC``, in demo order.
SERVICE_MODULES: dict[str, str] = {
    "execution": "tranche.execution.app",
    "trade": "tranche.trade.app",
    "doctoral": "tranche.doctoral.app",
}


class _Services(Mapping[str, ServiceSpec[Any]]):
    """Name → spec, importing each service's module on first access."""

    def __getitem__(self, name: str) -> ServiceSpec[Any]:
        module = SERVICE_MODULES[name]
        spec: ServiceSpec[Any] = importlib.import_module(module).SPEC
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(SERVICE_MODULES)

    def __len__(self) -> int:
        return len(SERVICE_MODULES)


SERVICES: Mapping[str, ServiceSpec[Any]] = _Services()


def get_service(name: str) -> ServiceSpec[Any]:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(SERVICE_MODULES)
        raise KeyError(f"unknown service '{name}' (known: {known})") from None
