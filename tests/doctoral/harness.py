"""What the doctoral fixtures hand to tests: migrated databases and a built runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from tests.doctoral.factories import SECRET, Portal, create_foreign
from tranche.core.migrations import upgrade
from tranche.core.outbox import Relay
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings

__all__ = ["Databases", "Running", "prepare"]

FIELDS = {
    "batchdb": "batch_db_url",
    "userdb": "user_db_url",
    "inscription_db": "inscription_db_url",
    "defensedb": "defense_db_url",
    "notification_db": "notification_db_url",
}


@dataclass
class Databases:
    """Fresh, migrated databases: batchdb by our migrations, the others from the fixture DDL."""

    kind: str
    urls: dict[str, str]

    def settings(self, **overrides: Any) -> DoctoralSettings:
        values: dict[str, Any] = {field: self.urls[name] for name, field in FIELDS.items()}
        values.update(
            jwt_secret=SECRET,
            db_pool_size=3,
            db_max_overflow=4,
            outbox_poll_interval_ms=50,
            outbox_initial_backoff_ms=50,
        )
        values.update(overrides)
        return DoctoralSettings(**values)


async def prepare(urls: dict[str, str]) -> dict[str, str]:
    await create_foreign(urls)
    await upgrade("doctoral", urls["batchdb"])
    return urls


@dataclass
class Running:
    runtime: Runtime
    portal: Portal
    relay: Relay | None
    registry: CollectorRegistry
