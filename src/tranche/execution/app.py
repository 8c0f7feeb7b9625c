"""The execution service's app factory and its :class:`ServiceSpec`.

``create_app(settings)`` wires everything and starts nothing: the lifespan starts
the outbox relay, the fill-callback deliverer and the idempotency-key purge, and
stops them (and closes the database) on shutdown. Outbound HTTP goes through
injected ``httpx.AsyncClient``s so tests hand in a transport (or another service's
ASGI app). The schema is not migrated here: ``tranche serve`` migrates the embedded
SQLite database, ``tranche db upgrade execution`` a production one.

Batches are written by the bulk :class:`BatchWriter`. A benchmark may pass
``batch_writer``, a factory of another :class:`AlternativeWriter` (the original's
sequential path, :mod:`tranche.execution.sequential`), to measure the bulk path
against it; nothing in production does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import httpx
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry

from tranche import __version__
from tranche.core.clock import utc_now
from tranche.core.db import Database, PoolCollector
from tranche.core.health import Health
from tranche.core.http import AppParts
from tranche.core.http import create_app as create_http_app
from tranche.core.idempotency import IdempotencyStore
from tranche.core.logging import get_logger
from tranche.core.loops import BackgroundLoop
from tranche.core.outbox import OutboxBacklog, Relay
from tranche.core.service import OwnedDatabase, ServiceSpec
from tranche.execution.bulk_create import BatchWriter
from tranche.execution.bulk_insert import pick_method
from tranche.execution.callbacks import FillDeliverer
from tranche.execution.clients.security import SecurityClient
from tranche.execution.clients.trade import TradeServiceClient
from tranche.execution.events import sent_hook, stamp_sent
from tranche.execution.metrics import ExecutionMetrics
from tranche.execution.models import idempotency as idempotency_table
from tranche.execution.router import ExecutionDeps, build_router
from tranche.execution.service import ExecutionService, ItemWriter
from tranche.execution.settings import ExecutionSettings
from tranche.execution.sizing import ChunkSizer, InsertGate, default_concurrency
from tranche.execution.topics import TopicProvisioner
from tranche.execution.validation import Rules

__all__ = [
    "SPEC",
    "AlternativeWriter",
    "ExecutionParts",
    "WriterFactory",
    "WriterParts",
    "create_app",
    "demo_overrides",
]

log = get_logger(__name__)
PURGE_INTERVAL_S = 600.0


@dataclass
class ExecutionParts:
    """Everything the app built, on ``app.state.execution`` (tests reach in through it)."""

    settings: ExecutionSettings
    db: Database
    registry: CollectorRegistry
    metrics: ExecutionMetrics
    relay: Relay
    security: SecurityClient
    deliverer: FillDeliverer | None
    idempotency: IdempotencyStore
    writer: BatchWriter
    service: ExecutionService
    deps: ExecutionDeps


@dataclass(frozen=True)
class WriterParts:
    """What a :data:`WriterFactory` may build its writer from."""

    settings: ExecutionSettings
    db: Database
    security: SecurityClient
    bulk: BatchWriter
    clock: Callable[[], datetime]


class AlternativeWriter(ItemWriter, Protocol):
    """A batch writer that replaces the bulk one (benchmarks); closed with the app."""

    #: Shown as ``batchStrategy`` in ``/actuator/info``.
    strategy: str

    async def aclose(self) -> None: ...


WriterFactory = Callable[[WriterParts], AlternativeWriter]


def create_app(
    settings: ExecutionSettings,
    *,
    http: httpx.AsyncClient | None = None,
    security_http: httpx.AsyncClient | None = None,
    trade_http: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
    batch_writer: WriterFactory | None = None,
) -> FastAPI:
    """Build the app. ``http`` serves both peers unless ``security_http``/``trade_http``
    are given; clients passed in are not closed by the app. ``batch_writer`` replaces
    the bulk path for batch requests (benchmarks only)."""
    now = clock or utc_now
    registry = CollectorRegistry()
    metrics = ExecutionMetrics(registry)
    db = Database.open("execution", settings.execution_database_url(), settings.pool())
    registry.register(PoolCollector([db]))
    owned_http = None
    if http is None and (security_http is None or trade_http is None):
        owned_http = httpx.AsyncClient(limits=httpx.Limits(max_connections=50))
        http = owned_http
    assert http is not None
    security = SecurityClient(
        security_http or http,
        settings.security_service_base_url,
        registry,
        batch_size=settings.security_service_batch_size,
        cache_size=settings.security_cache_size,
        cache_ttl_s=settings.security_cache_ttl_s,
        negative_ttl_s=settings.security_negative_cache_ttl_s,
        timeout_s=settings.security_service_timeout_ms / 1000,
        cooldown_s=settings.security_service_cooldown_ms / 1000,
    )
    relay = Relay(db, settings.kafka, settings.outbox, registry, name="execution-outbox", clock=now)
    relay.render(settings.orders_topic, stamp_sent)
    relay.on_sent(settings.orders_topic, sent_hook(), ahead=True)
    deliverer = None
    if settings.trade_service_base_url:
        trade = TradeServiceClient(
            trade_http or http,
            settings.trade_service_base_url,
            timeout_s=settings.trade_service_timeout_ms / 1000,
            conflict_retries=settings.trade_service_conflict_retries,
        )
        deliverer = FillDeliverer(
            db,
            trade,
            metrics,
            backoff=settings.callback.backoff(),
            poll_s=settings.callback.poll_interval_ms / 1000,
            clock=now,
        )
    idempotency = IdempotencyStore(
        db,
        ttl_s=settings.idempotency_ttl_s,
        lease_s=settings.idempotency_lease_s,
        wait_s=settings.idempotency_wait_ms / 1000,
        clock=now,
        table=idempotency_table,
    )
    concurrency = settings.max_concurrent_bulk_inserts or default_concurrency(
        settings.db_pool_size, settings.db_max_overflow, db.dialect
    )
    writer = BatchWriter(
        db,
        security=security,
        sizer=ChunkSizer(
            base=settings.bulk_insert_batch_size,
            minimum=settings.min_chunk_size,
            maximum=settings.max_chunk_size,
            enabled=settings.enable_dynamic_batch_sizing,
            target_s=settings.chunk_target_ms / 1000,
        ),
        gate=InsertGate(concurrency),
        method=pick_method(settings.insert_method, db.dialect),
        metrics=metrics,
        topic=settings.orders_topic,
        type_id=settings.kafka_type_id,
        parallel_chunks=settings.parallel_chunks,
        # Answering at commit: the events can go to the broker after the last chunk.
        hold_handoff=settings.publish_wait_ms == 0,
        backlog=OutboxBacklog(
            db,
            limit=settings.backlog_limit,
            max_wait_s=settings.backlog_wait_ms / 1000,
            relaying=lambda: relay.relaying,
            on_wait=metrics.backlog_wait.observe,
        ),
        clock=now,
    )
    alternative = None
    if batch_writer is not None:
        alternative = batch_writer(WriterParts(settings, db, security, writer, now))
        log.warning("alternative_batch_writer", strategy=alternative.strategy)
    rules = Rules(settings.allowed_trade_types, settings.allowed_statuses)
    service = ExecutionService(
        db,
        writer,
        security,
        metrics,
        rules,
        relay=relay,
        deliverer=deliverer,
        publish_wait_s=settings.publish_wait_ms / 1000,
        batch_writer=alternative,
        clock=now,
    )
    parts = ExecutionParts(
        settings,
        db,
        registry,
        metrics,
        relay,
        security,
        deliverer,
        idempotency,
        writer,
        service,
        ExecutionDeps(service, idempotency, settings.max_batch_size),
    )

    async def purge_round() -> None:
        purged = await idempotency.purge_expired()
        if purged:
            log.info("idempotency_keys_purged", rows=purged)

    purge = BackgroundLoop(
        "idempotency-purge",
        purge_round,
        interval_s=PURGE_INTERVAL_S,
        error_event="idempotency_purge_failed",
    )

    topics = None
    if settings.create_orders_topic and settings.kafka.bootstrap_servers:
        topics = TopicProvisioner(
            settings.kafka,
            settings.orders_topic,
            settings.orders_topic_partitions,
            settings.orders_topic_replication_factor,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if topics is not None:
            await topics.start()  # before the relay, so it does not auto-create the topic
        await relay.start()
        if deliverer is not None:
            await deliverer.start()
        purge.start()
        log.info(
            "execution_service_started",
            database=db.dialect,
            insert_method=writer.method,
            max_batch_size=settings.max_batch_size,
            trade_callbacks=deliverer is not None,
            security_service=security.enabled,
        )
        try:
            yield
        finally:
            await purge.stop()
            if deliverer is not None:
                await deliverer.stop()
            await relay.stop()
            if alternative is not None:
                await alternative.aclose()
            if topics is not None:
                await topics.stop()
            if owned_http is not None:
                await owned_http.aclose()
            await db.close()

    health = Health()
    health.add("db", db.ping, groups=("readiness",))
    # The broker degrades the service, it does not stop it (creates go on, events wait in
    # the outbox): DEGRADED in the overall view and in readiness, never a 503.
    health.add("kafka", relay.health, groups=("kafka", "readiness"), degrades=True)

    async def info() -> dict[str, Any]:
        return {
            "execution": {
                "database": db.dialect,
                "batchStrategy": alternative.strategy if alternative else "bulk",
                "insertMethod": writer.method,
                "chunkSize": writer.sizer.size(),
                "maxBatchSize": settings.max_batch_size,
                "dynamicBatchSizing": settings.enable_dynamic_batch_sizing,
                "concurrentBulkInserts": concurrency,
                "ordersTopic": settings.orders_topic,
                "securityService": security.enabled,
                "tradeCallbacks": await deliverer.status() if deliverer else None,
            }
        }

    app = create_http_app(
        AppParts(
            name="tranche execution service",
            version=__version__,
            registry=registry,
            health=health,
            routers=[build_router()],
            lifespan=lifespan,
            info=[info],
            max_body_bytes=settings.max_body_bytes,
            description="GlobeCo execution service API: executions, bulk batch create, fills.",
            openapi_tags=[{"name": "executions", "description": "Executions and fills"}],
        )
    )
    origins = [o.strip() for o in settings.cors_allowed_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Location", "Idempotent-Replayed", "X-Request-ID", "Retry-After"],
        )
    app.state.execution = parts
    return app


def _owned(settings: ExecutionSettings) -> list[OwnedDatabase]:
    return [OwnedDatabase("execution", settings.execution_database_url())]


def demo_overrides(base_urls: dict[str, str]) -> dict[str, Any]:
    """Fills flow back to the trade service when the demo runs one."""
    return {"trade_service_base_url": base_urls["trade"]} if "trade" in base_urls else {}


def _demo(settings: ExecutionSettings, ctx: Any) -> Any:
    from tranche.execution.demo import run_demo

    return run_demo(settings, ctx)


SPEC: ServiceSpec[ExecutionSettings] = ServiceSpec(
    name="execution",
    summary="execution service: executions, bulk batch create, fills → orders topic",
    settings_class=ExecutionSettings,
    create_app=create_app,
    owned_databases=_owned,
    demo=_demo,
    outbox_url=lambda s: s.execution_database_url(),
    demo_overrides=demo_overrides,
)
