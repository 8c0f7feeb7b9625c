"""The real execution service wired to the real trade service, both on PostgreSQL.

Two wirings: in process (each app reaches the other through ``httpx.ASGITransport``)
and over loopback (both served by uvicorn on free ports). Faults are injected
between them, never inside either service: an ASGI middleware in front of the
execution app answers 503 or withholds an answer it already committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.fixtures.broker import unique_topic
from tests.fixtures.originals import (
    EXECUTION_FLYWAY,
    EXECUTION_ROWS,
    TRADE_FLYWAY,
    TRADE_ROWS,
    build_original,
)
from tests.fixtures.servers import DatabaseFactory
from tests.fixtures.waiting import eventually
from tests.trade.factories import trade_settings
from tranche.core.broker import free_port
from tranche.core.migrations import upgrade
from tranche.core.settings import KafkaSettings
from tranche.execution.app import create_app as create_execution_app
from tranche.execution.settings import ExecutionSettings
from tranche.trade.app import create_app as create_trade_app

BATCH = "/api/v1/executions/batch"
# The execution service of these tests refuses EXRC, as a deployment with a narrower
# allow-list would: that is how the real service is made to refuse some items.
ALLOWED_TYPES = "BUY,SELL,SHORT,COVER"
READ_TIMEOUT_MS = 3000


@dataclass
class Faults:
    """What the middleware does to the next batch requests, and what it saw."""

    fail_next: int = 0
    stall_next: int = 0
    keys: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.fail_next = self.stall_next = 0
        self.keys.clear()


class FaultyExecutionService:
    """ASGI middleware in front of the execution app.

    ``fail_next``: answer 503 without calling the app. ``stall_next`` (loopback
    only): let the app answer (and commit), then hold the answer past the trade
    service's read timeout, so the trade service sees a timeout after the commit.
    """

    def __init__(self, app: ASGIApp, faults: Faults, stall_s: float | None) -> None:
        self.app = app
        self.faults = faults
        self.stall_s = stall_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != BATCH:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        self.faults.keys.append(headers.get(b"idempotency-key", b"").decode())
        if self.faults.fail_next > 0:
            self.faults.fail_next -= 1
            body = orjson.dumps({"status": 503, "message": "injected outage"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        if self.stall_s is not None and self.faults.stall_next > 0:
            self.faults.stall_next -= 1
            held: list[Message] = []

            async def hold(message: Message) -> None:
                held.append(message)

            await self.app(scope, receive, hold)
            await asyncio.sleep(self.stall_s)
            with contextlib.suppress(Exception):  # the client has hung up by now
                for message in held:
                    await send(message)
            return
        await self.app(scope, receive, send)


class StallAfterCommit(httpx.AsyncBaseTransport):
    """In-process counterpart of the stall: the execution app answers (and commits),
    then the trade service's request fails with a read timeout."""

    def __init__(self, inner: httpx.AsyncBaseTransport, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == BATCH and self.faults.stall_next > 0:
            self.faults.stall_next -= 1
            await response.aread()
            raise httpx.ReadTimeout("injected: answer lost after commit", request=request)
        return response


class _Deferred:
    """An ASGI app filled in later (the two apps refer to each other)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@dataclass
class Peers:
    trade: httpx.AsyncClient
    execution: httpx.AsyncClient
    execution_db: str
    faults: Faults
    wiring: str

    async def execution_rows(self, trade_ids: list[int]) -> dict[int, list[int]]:
        """Execution-service row ids by tradeServiceExecutionId, read from its database."""
        conn = await asyncpg.connect(self.execution_db.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch(
                "SELECT id, trade_service_execution_id FROM execution "
                "WHERE trade_service_execution_id = ANY($1::int[]) ORDER BY id",
                trade_ids,
            )
        finally:
            await conn.close()
        out: dict[int, list[int]] = {}
        for row in rows:
            out.setdefault(row["trade_service_execution_id"], []).append(row["id"])
        return out


def _execution_settings(
    url: str, bootstrap: str, data_dir: Path, **extra: Any
) -> ExecutionSettings:
    return ExecutionSettings(
        database_url=url,
        data_dir=data_dir,
        kafka=KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False),
        orders_topic=unique_topic("orders"),
        allowed_trade_types=ALLOWED_TYPES,
        outbox_poll_interval_ms=100,
        callback_poll_interval_ms=50,
        callback_initial_backoff_ms=50,
        log_json=False,
        **extra,
    )


@asynccontextmanager
async def _lifespans(*apps: FastAPI) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield


@asynccontextmanager
async def _served(app: ASGIApp, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started or task.done(), what="uvicorn start-up")
    if task.done():
        task.result()
        raise RuntimeError("server stopped during start-up")
    try:
        yield
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def peers(
    wiring: str,
    databases: DatabaseFactory,
    bootstrap: str,
    data_dir: Path,
    *,
    originals: bool = False,
) -> AsyncIterator[Peers]:
    """The two services wired by ``wiring``; with ``originals`` their databases are first
    built as the original Java services left them (:mod:`tests.fixtures.originals`)."""
    trade_db, execution_db = await databases("trade"), await databases("execution")
    if originals:
        await build_original(trade_db, TRADE_FLYWAY, TRADE_ROWS)
        await build_original(execution_db, EXECUTION_FLYWAY, EXECUTION_ROWS)
    await upgrade("trade", trade_db)
    await upgrade("execution", execution_db)
    faults = Faults()
    trade_overrides = {"execution_service_read_timeout_ms": READ_TIMEOUT_MS}
    if wiring == "asgi":
        deferred = _Deferred()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=deferred)) as trade_http:
            execution_app = create_execution_app(
                _execution_settings(
                    execution_db, bootstrap, data_dir, trade_service_base_url="http://trade.test"
                ),
                trade_http=trade_http,
            )
            to_execution = StallAfterCommit(
                httpx.ASGITransport(
                    app=FaultyExecutionService(execution_app, faults, None),
                    raise_app_exceptions=False,
                ),
                faults,
            )
            trade_app = create_trade_app(
                trade_settings(trade_db, **trade_overrides), transport=to_execution
            )
            deferred.app = trade_app
            # The execution app stops first: its fill deliverer calls the trade app in the
            # background, in its own task, and nothing else waits for that call. With the
            # trade app shut down first, a delivery in flight held a trade connection while
            # the trade database closed; the connection went back to the discarded pool and
            # the garbage collector reported it unclosed in some later test
            # (tests/trade/test_peer_shutdown.py).
            async with (
                _lifespans(trade_app, execution_app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=trade_app), base_url="http://trade.test"
                ) as trade,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=execution_app),
                    base_url="http://execution.test",
                ) as execution,
            ):
                yield Peers(trade, execution, execution_db, faults, wiring)
        return
    execution_port, trade_port = free_port(), free_port()
    execution_url, trade_url = (
        f"http://127.0.0.1:{execution_port}",
        f"http://127.0.0.1:{trade_port}",
    )
    execution_app = create_execution_app(
        _execution_settings(execution_db, bootstrap, data_dir, trade_service_base_url=trade_url)
    )
    trade_app = create_trade_app(
        trade_settings(trade_db, execution_service_base_url=execution_url, **trade_overrides)
    )
    stall_s = READ_TIMEOUT_MS / 1000 + 1
    async with (  # the execution service stops first, as in process (see above)
        _served(trade_app, trade_port),
        _served(FaultyExecutionService(execution_app, faults, stall_s), execution_port),
        httpx.AsyncClient(base_url=trade_url, timeout=60) as trade,
        httpx.AsyncClient(base_url=execution_url, timeout=60) as execution,
    ):
        yield Peers(trade, execution, execution_db, faults, wiring)
