"""How a service plugs into ``tranche serve``, ``tranche db upgrade`` and ``tranche demo``.

A service package exposes one :class:`ServiceSpec`; the CLI and the demo
orchestrator only talk to specs, so ``core`` never imports a service.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI

from tranche.core.broker import EmbeddedBroker
from tranche.core.db import dialect_of, redact
from tranche.core.logging import get_logger
from tranche.core.migrations import upgrade
from tranche.core.settings import KafkaSettings, ServiceSettings, load_settings

__all__ = [
    "DemoContext",
    "DemoLine",
    "OwnedDatabase",
    "ServiceSpec",
    "embedded_broker",
    "migrate",
    "run_loop",
    "run_server",
]

S = TypeVar("S", bound=ServiceSettings)
_R = TypeVar("_R")
log = get_logger(__name__)


@dataclass(frozen=True)
class OwnedDatabase:
    """A database the service owns and migrates (its Alembic env and URL)."""

    env: str
    url: str


@dataclass(frozen=True)
class DemoLine:
    """One row of the demo's closing summary."""

    service: str
    what: str
    result: str


@dataclass
class DemoContext:
    """What the demo orchestrator hands each service's scenario."""

    base_urls: dict[str, str]
    kafka_bootstrap: str
    data_dir: Path
    say: Callable[[str], None]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceSpec(Generic[S]):
    name: str
    summary: str
    settings_class: type[S]
    create_app: Callable[[S], FastAPI]
    owned_databases: Callable[[S], Sequence[OwnedDatabase]]
    demo: Callable[[S, DemoContext], Awaitable[list[DemoLine]]] | None = None
    #: False for a service that never talks to Kafka (``serve`` then starts no embedded broker).
    uses_kafka: bool = True
    #: URL of the database holding this service's outbox (``tranche outbox`` works on it).
    outbox_url: Callable[[S], str] | None = None
    #: Settings the demo passes so this service finds its peers: base URLs by service name.
    demo_overrides: Callable[[dict[str, str]], dict[str, Any]] | None = None

    def load_settings(self, **overrides: Any) -> S:
        return load_settings(self.settings_class, **overrides)


async def migrate(spec: ServiceSpec[Any], settings: ServiceSettings, sqlite_only: bool) -> None:
    """Upgrade the service's own databases (only the SQLite ones when ``sqlite_only``)."""
    for db in spec.owned_databases(settings):
        if sqlite_only and dialect_of(db.url) != "sqlite":
            continue
        log.info("migrate", service=spec.name, env=db.env, url=redact(db.url))
        await upgrade(db.env, db.url)


@contextlib.asynccontextmanager
async def embedded_broker(kafka: KafkaSettings, log_dir: Path) -> AsyncIterator[KafkaSettings]:
    """Yield ``kafka`` as is when a cluster is configured, else start Tansu and point at it."""
    if kafka.bootstrap_servers:
        yield kafka
        return
    broker = EmbeddedBroker(log_path=log_dir / "tansu.log")
    await asyncio.to_thread(broker.start)
    try:
        await broker.wait_ready()
        log.info("embedded_broker_started", bootstrap=broker.bootstrap_servers)
        # Tansu rejects aiokafka's InitProducerId, so the embedded broker runs without idempotence.
        yield kafka.model_copy(
            update={"bootstrap_servers": broker.bootstrap_servers, "enable_idempotence": False}
        )
    finally:
        await asyncio.to_thread(broker.stop)


def run_loop(main: Coroutine[Any, Any, _R]) -> _R:
    """Run ``main`` to completion on uvloop (installed with ``uvicorn[standard]``).

    uvicorn picks uvloop by itself only when it creates the loop; ``tranche serve`` runs
    it inside a loop of its own (broker, migrations, then the server), which
    ``asyncio.run`` would make the standard one. Measured on the execution service's
    1 000-item batch: see docs/benchmarks.md.
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency of uvicorn[standard]
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


#: Container allocations (net of frees) between two passes of the collector over its
#: youngest generation; CPython's default is 700. A 1 000-item batch holds ~10 000 young
#: containers at once (parsed items, rows, DTOs, events), all alive until its answer: at
#: 700 each such request ran ~10 young passes and one middle one over them, ~3 % of its
#: CPU (docs/benchmarks.md, execution service). Cycles are still collected, later.
GC_YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Set the collector up for serving: the start-up heap frozen, young passes rarer.

    The start-up heap (imported modules, the app) lives as long as the process: frozen,
    it is left out of the collector's full passes, which otherwise walk its ~150 000
    objects (~100 ms) every few large requests (docs/benchmarks.md, execution service)."""
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


async def run_server(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until cancelled or signalled."""
    settle_heap()
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    await uvicorn.Server(config).serve()
