"""The pieces ``tranche bench execution`` measures with: scratch databases, the execution
service as a real ``tranche serve`` process, the same app in-process, the raw COPY floor,
and the outbox probes (backlog, commit-to-broker latency)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
from fastapi import FastAPI

from tranche.core.broker import free_port
from tranche.core.db import normalize_url
from tranche.core.migrations import upgrade
from tranche.core.outbox.enqueue import COPY_COLUMNS
from tranche.core.settings import KafkaSettings
from tranche.execution.app import WriterFactory, create_app
from tranche.execution.bulk_insert import COLUMNS
from tranche.execution.models import EIGHT_PLACES
from tranche.execution.settings import ExecutionSettings

__all__ = [
    "BATCH_PATH",
    "SERVE_EXECUTION",
    "SERVE_SEQUENTIAL",
    "Floor",
    "Served",
    "batch_body",
    "in_process",
    "outbox_probe",
    "pct",
    "scratch_database",
    "served",
    "stop_child",
    "wait_ready",
]

BATCH_PATH = "/api/v1/executions/batch"
JSON_HEADERS = {"content-type": "application/json"}
_RESERVE = "SELECT nextval('execution_id_seq') FROM generate_series(1, $1)"
_ZERO = Decimal("0E-8")
# What the service stores for the bench's items: decimal(18,8) values at scale 8.
_QUANTITIES = [Decimal(100 + i).quantize(EIGHT_PLACES) for i in range(900)]
_PRICE = Decimal("25.5").quantize(EIGHT_PLACES)
# An `orders` value and headers of the size the service writes (about 470 bytes).
_PAYLOAD = orjson.dumps(
    {
        "id": 2147483647,
        "executionStatus": "NEW",
        "tradeType": "BUY",
        "destination": "ML",
        "securityId": "0" * 24,
        "ticker": None,
        "security": {"securityId": "0" * 24, "ticker": None},
        "quantity": "100.00000000",
        "limitPrice": "25.50000000",
        "receivedTimestamp": "2025-01-02T03:04:05.123456Z",
        "sentTimestamp": None,
        "tradeServiceExecutionId": 2147483647,
        "quantityFilled": "0.00000000",
        "averagePrice": None,
        "version": 1,
    }
)
_HEADERS = orjson.dumps(
    {
        "__TypeId__": "org.kasbench.globeco_execution_service.ExecutionDTO",
        "content-type": "application/json",
    }
).decode()


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the largest value when there are fewer than 1/(1-q))."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def batch_body(n: int, offset: int = 0) -> bytes:
    """A batch as the trade service sends it: n valid items, 97 securities, 3 destinations."""
    return orjson.dumps(
        {
            "executions": [
                {
                    "executionStatus": "NEW",
                    "tradeType": ("BUY", "SELL")[i % 2],
                    "destination": ("ML", "RBC", "JPM")[i % 3],
                    "securityId": f"{i % 97:024x}",
                    "quantity": 100 + i % 900,
                    "limitPrice": 25.5 if i % 3 else None,
                    "tradeServiceExecutionId": offset + i,
                    "version": 1,
                }
                for i in range(n)
            ]
        }
    )


def _admin(server: str) -> str:
    return normalize_url(server).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_database(server: str, label: str) -> AsyncIterator[str]:
    """A fresh, migrated database on ``server``, dropped afterwards; yields its URL."""
    name = f"tranche_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_admin(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = normalize_url(server).set(database=name).render_as_string(hide_password=False)
            await upgrade("execution", url)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class Floor:
    """The same rows written with asyncpg alone: reserve ids, COPY, commit — no framework."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    async def connect(cls, url: str) -> Floor:
        return cls(await asyncpg.connect(_admin(url)))

    async def close(self) -> None:
        await self.conn.close()

    async def once(self, n: int, outbox: bool = False) -> float:
        """Seconds to write ``n`` executions (building the records included) and, with
        ``outbox``, in the same transaction one outbox row each as the service writes
        them (an execution-sized JSON value, its headers, a random event id)."""
        now = datetime.now(UTC)
        event_ids = [str(uuid.uuid4()) for _ in range(n)] if outbox else []
        start = time.perf_counter()
        async with self.conn.transaction():
            ids = sorted(r[0] for r in await self.conn.fetch(_RESERVE, n))
            records = [
                (
                    row_id,
                    "NEW",
                    ("BUY", "SELL")[i % 2],
                    ("ML", "RBC", "JPM")[i % 3],
                    f"{i % 97:024x}",
                    _QUANTITIES[i % 900],
                    _PRICE if i % 3 else None,
                    now,
                    None,
                    1,
                    i,
                    _ZERO,
                    None,
                )
                for i, row_id in enumerate(ids)
            ]
            await self.conn.copy_records_to_table("execution", records=records, columns=COLUMNS)
            if outbox:
                events = [
                    (e, "orders", str(row_id), _PAYLOAD, _HEADERS, "PENDING", 0, None, now, now)
                    for e, row_id in zip(event_ids, ids, strict=True)
                ]
                await self.conn.copy_records_to_table(
                    "outbox", records=events, columns=COPY_COLUMNS
                )
        return time.perf_counter() - start


@dataclass
class Served:
    """An execution service the bench talks to: a client, its database, its process id."""

    name: str
    client: httpx.AsyncClient
    database_url: str
    pid: int | None = None
    app: FastAPI | None = None
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    async def post(self, body: bytes) -> httpx.Response:
        return await self.client.post(BATCH_PATH, content=body, headers=JSON_HEADERS)


def _env(settings: dict[str, Any], bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXECUTION_", "KAFKA_"))}
    env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env["KAFKA_ENABLE_IDEMPOTENCE"] = "false"  # the embedded broker refuses InitProducerId
    env.update({f"EXECUTION_{k.upper()}": str(v) for k, v in settings.items()})
    return env


#: The child process of :func:`served`: ``tranche serve execution``.
SERVE_EXECUTION = ("-m", "tranche", "serve", "execution")
#: The same server on the original's sequential batch path (injected, not a setting).
SERVE_SEQUENTIAL = ("-m", "tranche.bench._sequential_server")


@asynccontextmanager
async def served(
    name: str,
    database_url: str,
    bootstrap: str,
    work: Path,
    *,
    command: Sequence[str] = SERVE_EXECUTION,
    **settings: Any,
) -> AsyncIterator[Served]:
    """``tranche serve execution`` (or ``command``) as a child process (uvicorn on loopback)."""
    port = free_port()
    options = {
        "database_url": database_url,
        "data_dir": work / name,
        "log_level": "WARNING",
        "orders_topic": f"bench.orders.{name}",
        **settings,
    }
    log = work / f"{name}.log"
    with log.open("ab") as out:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            "--port",
            str(port),
            env=_env(options, bootstrap),
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=base,
            timeout=httpx.Timeout(600, connect=10),
            limits=httpx.Limits(max_connections=100),
        ) as client:
            await wait_ready(client, child, log)
            yield Served(name, client, database_url, child.pid, log=log)
    finally:
        await stop_child(child)


async def stop_child(child: Any) -> None:
    """Terminate a served subprocess, killing it if it has not ended within 15 s."""
    if child.returncode is None:
        child.terminate()
        try:
            await asyncio.wait_for(child.wait(), 15)
        except TimeoutError:
            child.kill()
            await child.wait()


async def wait_ready(
    client: httpx.AsyncClient,
    child: Any,
    log: Path,
    what: str = "the execution service",
    path: str = "/actuator/health/readiness",
) -> None:
    """Poll ``path`` until it answers 200; fail with the log's tail if ``child`` exits."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if child.returncode is not None:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-2000:]
            raise RuntimeError(f"{what} exited ({child.returncode}): {tail}")
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(path)).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not become ready; see {log}")


@asynccontextmanager
async def in_process(
    name: str,
    database_url: str,
    bootstrap: str,
    work: Path,
    *,
    batch_writer: WriterFactory | None = None,
    **settings: Any,
) -> AsyncIterator[Served]:
    """The same app in this process, called through httpx's ASGI transport (no socket)."""
    options: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": work / name,
        "log_level": "WARNING",
        "log_json": False,
        "kafka": KafkaSettings(bootstrap_servers=bootstrap, enable_idempotence=False),
        "orders_topic": f"bench.orders.{name}",
        **settings,
    }
    app = create_app(ExecutionSettings(**options), batch_writer=batch_writer)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://execution", timeout=600
        ) as client:
            yield Served(name, client, database_url, app=app)


class OutboxProbe:
    """Reads a service's outbox: its backlog, and commit-to-broker latency of recent events."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def pending(self) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM outbox WHERE status='PENDING'"))

    async def mark(self) -> int:
        return int(await self.conn.fetchval("SELECT coalesce(max(seq), 0) FROM outbox"))

    async def drained(self, timeout_s: float = 120.0, step_s: float = 0.01) -> float:
        """Seconds until nothing is PENDING (checked every ``step_s``)."""
        start = time.perf_counter()
        while await self.pending():
            if time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"outbox still has {await self.pending()} rows pending")
            await asyncio.sleep(step_s)
        return time.perf_counter() - start

    async def publish_latencies_ms(self, after_seq: int) -> list[float]:
        """Per event since ``after_seq``: outbox row written (in the chunk's transaction,
        just before its commit) → ``sent_timestamp`` stamped by the relay's after-send
        hook once the broker acknowledged."""
        rows = await self.conn.fetch(
            "SELECT extract(epoch FROM e.sent_timestamp - o.created_at) * 1000 "
            "FROM outbox o JOIN execution e ON e.id = o.key::int "
            "WHERE o.seq > $1 AND e.sent_timestamp IS NOT NULL",
            after_seq,
        )
        return [float(r[0]) for r in rows]


@asynccontextmanager
async def outbox_probe(database_url: str) -> AsyncIterator[OutboxProbe]:
    conn = await asyncpg.connect(_admin(database_url))
    try:
        yield OutboxProbe(conn)
    finally:
        await conn.close()
