"""The execution service running in-process (ASGI) on a real database and the real broker."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from tests.fixtures.broker import unique_topic
from tranche.core.migrations import upgrade
from tranche.core.settings import KafkaSettings
from tranche.execution.app import ExecutionParts, WriterFactory, create_app
from tranche.execution.models import execution_table
from tranche.execution.schemas import dumps
from tranche.execution.settings import ExecutionSettings


def encode(body: Any) -> bytes:
    """JSON with exact decimals; integers beyond 64 bits (which orjson refuses) via json."""
    try:
        return dumps(body)
    except TypeError:
        return json.dumps(body).encode()


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    parts: ExecutionParts
    topic: str
    url: str

    async def post(self, path: str, body: Any, **kw: Any) -> httpx.Response:
        """POST ``body`` as JSON (decimals exact)."""
        headers = {"content-type": "application/json", **kw.pop("headers", {})}
        return await self.client.post(path, content=encode(body), headers=headers, **kw)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.client.put(
            path, content=encode(body), headers={"content-type": "application/json"}
        )

    async def count(self, where: Any = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(execution_table)
        if where is not None:
            stmt = stmt.where(where)
        async with self.parts.db.sessions() as s:
            return int((await s.execute(stmt)).scalar_one())

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.parts.db.sessions() as s:
            return (await s.execute(sa.text(sql), params)).scalar()


def make_settings(
    url: str, bootstrap: str, data_dir: Path, topic: str, **overrides: Any
) -> ExecutionSettings:
    values: dict[str, Any] = {
        "database_url": url,
        "data_dir": data_dir,
        "kafka": KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False),
        "orders_topic": topic,
        "outbox_poll_interval_ms": 100,
        # The wait ends at the broker's ack; a long bound keeps "the answer carries
        # sentTimestamp" true on a loaded machine. Outage tests set a short one.
        "publish_wait_ms": 30_000,
        "log_json": False,
    }
    values.update(overrides)
    return ExecutionSettings(**values)


@asynccontextmanager
async def running(
    url: str,
    bootstrap: str,
    data_dir: Path,
    *,
    topic: str | None = None,
    http: httpx.AsyncClient | None = None,
    batch_writer: WriterFactory | None = None,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """Migrate ``url``, start the app (lifespan included) and yield a client for it."""
    await upgrade("execution", url)
    topic = topic or unique_topic("orders")
    settings = make_settings(url, bootstrap, data_dir, topic, **overrides)
    app = create_app(settings, http=http, batch_writer=batch_writer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://execution") as client:
            yield Harness(app, client, app.state.execution, topic, url)
