"""The trade service's app factory and its :class:`ServiceSpec` (``tranche serve trade``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tranche import __version__
from tranche.core.db import Database, PoolCollector, redact
from tranche.core.health import Health
from tranche.core.http import AppParts
from tranche.core.http import create_app as create_http_app
from tranche.core.logging import get_logger
from tranche.core.service import OwnedDatabase, ServiceSpec
from tranche.trade.client import ExecutionServiceClient, Sleep, create_http_client
from tranche.trade.demo import run_demo
from tranche.trade.metrics import SubmissionMetrics
from tranche.trade.repository import TradeStore
from tranche.trade.router import build_router
from tranche.trade.router_v2 import build_v2_router
from tranche.trade.routing import TradeContext
from tranche.trade.service import SubmissionService, error_members
from tranche.trade.settings import TradeSettings
from tranche.trade.submission import BulkSubmitter

__all__ = ["SPEC", "create_app"]

log = get_logger(__name__)


def create_app(
    settings: TradeSettings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Sleep = asyncio.sleep,
) -> FastAPI:
    """The trade service. ``transport`` replaces the network path to the execution
    service (tests pass the execution app itself); ``sleep`` paces retries."""
    registry = CollectorRegistry()
    health = Health()
    db = Database.open("trade", settings.trade_database_url(), settings.pool())
    registry.register(PoolCollector([db]))
    metrics = SubmissionMetrics(registry, settings.execution_service_metrics_enabled)
    health.add("db", db.ping, groups=("readiness",))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = create_http_client(settings, transport)
        store = TradeStore(db)
        client = ExecutionServiceClient(http, settings, sleep)
        submitter = BulkSubmitter(store, client, settings, metrics, sleep)
        app.state.trade = TradeContext(store, SubmissionService(store, submitter))
        if settings.effective_batch_size != settings.execution_service_batch_size:
            log.warning(
                "batch_size_adjusted",
                configured=settings.execution_service_batch_size,
                used=settings.effective_batch_size,
                batching=settings.execution_service_enable_batching,
            )
        log.info(
            "trade_started",
            database=redact(settings.trade_database_url()),
            execution_service=settings.execution_service_base_url,
            batch_size=settings.effective_batch_size,
            max_in_flight=settings.execution_service_max_in_flight,
        )
        try:
            yield
        finally:
            await http.aclose()
            await db.close()

    async def info() -> dict[str, Any]:
        return {
            "executionService": {
                "baseUrl": settings.execution_service_base_url,
                "batchSize": settings.effective_batch_size,
                "maxInFlight": settings.execution_service_max_in_flight,
            }
        }

    parts = AppParts(
        name="trade",
        version=__version__,
        registry=registry,
        health=health,
        routers=[build_router(), build_v2_router()],
        lifespan=lifespan,
        info=[info],
        max_body_bytes=settings.max_body_bytes,
        description="Trade orders and executions; bulk submission to the execution service.",
        error_members=error_members,
    )
    return create_http_app(parts)


def _owned(settings: TradeSettings) -> list[OwnedDatabase]:
    return [OwnedDatabase("trade", settings.trade_database_url())]


def _demo_overrides(base_urls: dict[str, str]) -> dict[str, Any]:
    if "execution" not in base_urls:
        return {}
    # Short backoff: the demo shows a working path, not a patient one.
    return {
        "execution_service_base_url": base_urls["execution"],
        "execution_service_retry_initial_delay_ms": 200,
        "execution_service_individual_retry_initial_delay_ms": 200,
    }


SPEC: ServiceSpec[TradeSettings] = ServiceSpec(
    name="trade",
    summary="trade orders, executions, bulk submission to the execution service",
    settings_class=TradeSettings,
    create_app=create_app,
    owned_databases=_owned,
    demo=run_demo,
    demo_overrides=_demo_overrides,
    uses_kafka=False,
)
