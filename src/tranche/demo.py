"""``tranche demo``: every service end to end on embedded defaults.

Starts the embedded broker, brings each registered service up on SQLite files
in a fresh data directory (real uvicorn servers on free loopback ports), runs
each service's demo scenario and prints a summary table.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from tranche.core.broker import free_port
from tranche.core.logging import configure_logging
from tranche.core.service import DemoContext, DemoLine, ServiceSpec, embedded_broker, migrate
from tranche.core.settings import KafkaSettings
from tranche.services import SERVICES

__all__ = ["run_demo"]


async def _broker_round_trip(bootstrap: str) -> str:
    topic = f"demo.ping.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        start = time.perf_counter()
        await producer.send_and_wait(topic, b"ping", key=b"demo")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        got = [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    if got != [b"ping"]:
        raise RuntimeError(f"round trip on {topic} returned {got!r}")
    return f"produced and consumed 1 message in {(time.perf_counter() - start) * 1000:.0f} ms"


async def _start(
    spec: ServiceSpec[Any], overrides: dict[str, Any]
) -> tuple[Any, uvicorn.Server, asyncio.Task[None]]:
    settings = spec.load_settings(**overrides)
    await migrate(spec, settings, sqlite_only=True)
    config = uvicorn.Config(
        spec.create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"{spec.name} stopped during start-up")
        await asyncio.sleep(0.02)
    return settings, server, task


async def run_demo(keep: bool = False) -> int:
    configure_logging("WARNING", json=False)
    console = Console()
    data_dir = Path(tempfile.mkdtemp(prefix="tranche-demo-"))
    lines: list[DemoLine] = []
    failed = False
    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        async with embedded_broker(KafkaSettings(bootstrap_servers=None), data_dir) as kafka:
            assert kafka.bootstrap_servers is not None
            console.print(f"[bold]broker[/] embedded Tansu on {kafka.bootstrap_servers}")
            lines.append(
                DemoLine(
                    "broker", "Kafka round trip", await _broker_round_trip(kafka.bootstrap_servers)
                )
            )
            ports = {name: free_port() for name in SERVICES}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            ctx = DemoContext(urls, kafka.bootstrap_servers, data_dir, console.print)
            started: dict[str, Any] = {}
            for name, spec in SERVICES.items():
                overrides = {"port": ports[name], "data_dir": data_dir / name, "kafka": kafka}
                overrides.update(spec.demo_overrides(urls) if spec.demo_overrides else {})
                settings, server, task = await _start(spec, overrides)
                servers.append((server, task))
                started[name] = settings
                console.print(f"[bold]{name}[/] listening on {urls[name]} ({spec.summary})")
            for name, spec in SERVICES.items():
                if spec.demo is None:
                    continue
                try:
                    lines += await spec.demo(started[name], ctx)
                except Exception as exc:
                    failed = True
                    lines.append(DemoLine(name, "scenario", f"FAILED: {type(exc).__name__}: {exc}"))
            for server, _ in servers:
                server.should_exit = True
            await asyncio.gather(*(t for _, t in servers), return_exceptions=True)
    finally:
        if not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    table = Table(title="tranche demo")
    for col in ("service", "what", "result"):
        table.add_column(col)
    for line in lines:
        table.add_row(line.service, line.what, line.result)
    console.print(table)
    console.print(f"data directory: {data_dir}" + ("" if keep else " (removed; --keep to keep it)"))
    if not SERVICES:
        console.print("no services are registered yet: only the broker was exercised")
    return 1 if failed else 0
