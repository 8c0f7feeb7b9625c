"""Spring Boot-style health: named components, ``liveness`` and ``readiness`` groups.

The originals' deployments probe ``/actuator/health/liveness`` and
``/actuator/health/readiness``; the body keeps Spring's shape
(``{"status": "UP", "components": {name: {"status", "details"}}}``) and a DOWN
status answers 503, as Spring does.

A component added with ``degrades=True`` is one the service keeps working without
(the broker: events wait in the outbox while requests still answer 201). When its
check fails it reports ``DEGRADED`` with the error, and the overall status and every
group stay UP (200): a DOWN here would make an orchestrator restart a pod that is
doing its job, and a restart cannot bring a broker back. Alert on the component's
status (or the circuit gauge), not on the probe.

``details_for`` is Spring's ``show-details: when-authorized``: when set, only a request
it approves sees the components (and their error texts); everybody else gets the
status alone, so no database error or host name is shown in public.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DetailsPolicy", "Health", "HealthCheck"]

HealthCheck = Callable[[], Awaitable[dict[str, Any] | None]]
#: Decides from the request whether its sender may see the components' details.
DetailsPolicy = Callable[[Any], Awaitable[bool]]


@dataclass
class _Component:
    check: HealthCheck
    groups: frozenset[str]
    degrades: bool = False


@dataclass
class Health:
    """Registry of health checks. A check returns details (or None) when UP and raises when DOWN."""

    timeout_s: float = 5.0
    details_for: DetailsPolicy | None = None
    _components: dict[str, _Component] = field(default_factory=dict)

    def add(
        self,
        name: str,
        check: HealthCheck,
        groups: Iterable[str] = ("readiness",),
        *,
        degrades: bool = False,
    ) -> None:
        """Register ``check``; ``degrades``: its failure is DEGRADED, not DOWN (see above)."""
        self._components[name] = _Component(check, frozenset(groups), degrades)

    @property
    def groups(self) -> set[str]:
        return {"liveness", "readiness"} | {g for c in self._components.values() for g in c.groups}

    async def _run(self, component: _Component) -> dict[str, Any]:
        try:
            details = await asyncio.wait_for(component.check(), self.timeout_s)
        except Exception as exc:
            # Only the exception type and message: never a stack or a connection string.
            status = "DEGRADED" if component.degrades else "DOWN"
            return {"status": status, "details": {"error": f"{type(exc).__name__}: {exc}"[:300]}}
        out: dict[str, Any] = {"status": "UP"}
        if details:
            out["details"] = details
        return out

    async def report(self, group: str | None = None, request: Any = None) -> dict[str, Any]:
        """The health body; ``request`` is judged by :attr:`details_for` when that is set."""
        body = await self._full(group)
        if self.details_for is None or (request is not None and await self.details_for(request)):
            return body
        return {"status": body["status"]}

    async def _full(self, group: str | None) -> dict[str, Any]:
        chosen = {n: c for n, c in self._components.items() if group is None or group in c.groups}
        results = await asyncio.gather(*(self._run(c) for c in chosen.values()))
        components = dict(zip(chosen, results, strict=True))
        up = all(r["status"] != "DOWN" for r in results)
        body: dict[str, Any] = {"status": "UP" if up else "DOWN"}
        if components:
            body["components"] = components
        if group is None:
            body["groups"] = sorted(self.groups)
        return body
