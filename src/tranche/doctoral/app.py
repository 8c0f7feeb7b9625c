"""The doctoral batch service: app factory and :class:`ServiceSpec` (``tranche serve doctoral``).

The lifespan builds the :class:`Runtime` (five databases, jobs, launcher,
scheduler), starts the outbox relay and the scheduler, registers with Eureka
when configured, and undoes it all in reverse on shutdown (running jobs get
``BATCH_SHUTDOWN_GRACE_SECONDS`` to stop after their chunk).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tranche import __version__
from tranche.core.clock import Clock, utc_now
from tranche.core.db import PoolCollector
from tranche.core.health import Health
from tranche.core.http import AppParts
from tranche.core.http import create_app as create_http_app
from tranche.core.jwt import JwtVerifier
from tranche.core.outbox import Relay
from tranche.core.service import OwnedDatabase, ServiceSpec
from tranche.doctoral.auth import TriggerLimiter, is_admin_request, resolve_jwt_secret
from tranche.doctoral.console.router import router as console_static
from tranche.doctoral.console_router import router as console_router
from tranche.doctoral.eureka import register, unregister
from tranche.doctoral.report_router import router as report_router
from tranche.doctoral.router import router
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import create_foreign_schema

__all__ = ["SPEC", "create_app"]

DESCRIPTION = """Scheduled jobs over the doctoral portal's databases and their admin API.

Every `/api/batch/**` route needs a user-service access token holding `ROLE_ADMIN`
(`Authorization: Bearer <token>`). Execution ids are the batch engine's, everywhere.
"""


def create_app(settings: DoctoralSettings, clock: Clock = utc_now) -> FastAPI:
    """The doctoral service; ``clock`` is every job's and the engine's notion of now
    (tests pin it so that what they seeded is due exactly as they computed)."""
    registry = CollectorRegistry()
    # Components (and their error texts) for admins only; the status for everyone.
    health = Health(details_for=is_admin_request)
    parts = AppParts(
        name="batch-service",
        version=__version__,
        registry=registry,
        health=health,
        routers=[router, report_router, console_router, console_static],
        max_body_bytes=settings.max_body_bytes,
        description=DESCRIPTION,
        openapi_tags=[{"name": "Batch Job Management", "description": "Run and watch jobs"}],
    )
    state: dict[str, Any] = {}

    async def jobs_info() -> dict[str, Any]:
        runtime: Runtime | None = state.get("runtime")
        if runtime is None:
            return {}
        fire = runtime.scheduler.next_fire_times() if settings.batch.scheduler_enabled else {}
        return {
            "batch": {
                "schedulerEnabled": settings.batch.scheduler_enabled,
                "timeZone": settings.batch.timezone,
                "jobs": [
                    {
                        "name": name,
                        "description": spec.description,
                        "cronExpression": spec.cron,
                        "nextFireTime": _iso(fire.get(name)),
                    }
                    for name, spec in runtime.specs.items()
                ],
            }
        }

    parts.info.append(jobs_info)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, registry, clock=clock)
        if settings.embedded:
            # Embedded mode only (never production): give the SQLite stand-ins of the
            # portal's databases their owners' tables, so jobs and seed-demo have them.
            for db in runtime.sources.foreign():
                await create_foreign_schema(db.engine, db.name)
        state["runtime"] = runtime
        app.state.runtime = runtime
        app.state.jwt_verifier = JwtVerifier(
            key=resolve_jwt_secret(settings),
            issuer=settings.jwt_issuer,
            leeway_s=settings.jwt_leeway_s,
        )
        limiter = TriggerLimiter(settings.trigger_rate_limit, settings.rate_limit_storage_url)
        app.state.trigger_limiter = limiter
        registry.register(PoolCollector(list(runtime.sources)))
        for db in runtime.sources:
            health.add(db.name, db.ping)
        relay = Relay(
            runtime.sources.batchdb, settings.kafka, settings.outbox, registry, name="doctoral"
        )
        # Non-essential outages degrade, never DOWN (docs/reliability.md, "Doctoral
        # faults"): events wait in the outbox, mails are recorded as not delivered, and a
        # restarted pod would bring neither the broker nor the mail server back.
        health.add("kafka", relay.health, groups=("kafka", "readiness"), degrades=True)
        if runtime.mailer.enabled:
            health.add("mail", runtime.mailer.health, groups=("mail", "readiness"), degrades=True)
        await relay.start()
        await runtime.recover()
        gauges = asyncio.create_task(runtime.refresh_metrics_forever(), name="doctoral:metrics")
        if settings.batch.scheduler_enabled:
            runtime.scheduler.start()
        eureka = await register(settings)
        try:
            yield
        finally:
            gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gauges
            await unregister(eureka)
            await runtime.scheduler.stop()
            await runtime.launcher.close()
            await relay.stop()
            await runtime.sources.close()
            await limiter.close()

    parts.lifespan = lifespan
    return create_http_app(parts)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def owned_databases(settings: DoctoralSettings) -> Sequence[OwnedDatabase]:
    return [OwnedDatabase("doctoral", settings.database_urls()["batchdb"])]


def outbox_url(settings: DoctoralSettings) -> str:
    return settings.database_urls()["batchdb"]


def _spec() -> ServiceSpec[DoctoralSettings]:
    from tranche.doctoral.demo import demo, demo_overrides

    return ServiceSpec(
        name="doctoral",
        summary="doctoral batch service: token cleanup, thesis-duration alerts, admin API",
        settings_class=DoctoralSettings,
        create_app=create_app,
        owned_databases=owned_databases,
        demo=demo,
        outbox_url=outbox_url,
        demo_overrides=demo_overrides,
    )


SPEC = _spec()
