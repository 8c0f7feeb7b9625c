"""The registry of deployable services, in demo order (the execution service first,
since the trade service submits to it)."""

from __future__ import annotations

from typing import Any

from tranche.core.service import ServiceSpec
from tranche.doctoral.app import SPEC as DOCTORAL_SPEC
from tranche.execution.app import SPEC as EXECUTION_SPEC
from tranche.trade.app import SPEC as TRADE_SPEC

__all__ = ["SERVICES", "get_service"]

# The execution service first: the trade service submits to it.
SERVICES: dict[str, ServiceSpec[Any]] = {"execution": EXECUTION_SPEC}


def get_service(name: str) -> ServiceSpec[Any]:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(SERVICES) or "none yet"
        raise KeyError(f"unknown service '{name}' (known: {known})") from None


# Last, so it follows the execution service in demo order: the trade service submits to it.
SERVICES["trade"] = TRADE_SPEC

# The doctoral batch service talks to neither of the others; it comes last in demo order.
SERVICES["doctoral"] = DOCTORAL_SPEC
