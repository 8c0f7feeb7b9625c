"""``tranche demo``'s execution-service scenario, against the running service over HTTP.

Posts a realistic batch (a blotter of equity orders across five brokers, two of
them malformed), replays it with the same Idempotency-Key, fills one execution,
lists the page, and reads the new executions back from the ``orders`` topic.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from tranche.core.service import DemoContext, DemoLine
from tranche.execution.settings import ExecutionSettings

__all__ = ["demo_batch", "run_demo"]

SERVICE = "execution"
_DESTINATIONS = ("ML", "RBC", "JPM", "IB", "INST")
_TYPES = ("BUY", "BUY", "SELL", "SELL", "SHORT", "COVER")


def demo_batch(n: int = 40, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` executions shaped as the trade service sends them; items 5 and 17 are invalid.

    No ``tradeServiceExecutionId``: these are not the trade service's executions, so a
    fill of one must not be reported to it (the trade service's own demo does that).
    """
    rng = random.Random(seed)
    securities = [f"{rng.getrandbits(96):024x}" for _ in range(12)]
    items: list[dict[str, Any]] = []
    for _ in range(n):
        price = Decimal(rng.randint(500, 50_000)) / 100
        items.append(
            {
                "executionStatus": "NEW",
                "tradeType": rng.choice(_TYPES),
                "destination": rng.choice(_DESTINATIONS),
                "securityId": rng.choice(securities),
                "quantity": rng.choice((100, 250, 500, 1000, 2500)),
                "limitPrice": float(price) if rng.random() < 0.7 else None,
                "tradeServiceExecutionId": None,
                "version": 1,
            }
        )
    if n > 17:
        items[5]["quantity"] = -100
        items[17]["tradeType"] = "SWAP"
    return items


async def _consume(bootstrap: str, topic: str, ids: set[str], timeout_s: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,  # a reader, not a member: no group join to wait for
    )
    await consumer.start()
    found: dict[str, Any] = {}
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(found) < len(ids) and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    key = rec.key.decode() if rec.key else ""
                    if key in ids:
                        found[key] = rec
    finally:
        await consumer.stop()
    return list(found.values())


async def run_demo(settings: ExecutionSettings, ctx: DemoContext) -> list[DemoLine]:
    base = ctx.base_urls[SERVICE]
    lines: list[DemoLine] = []
    items = demo_batch()
    key = f"demo-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        ctx.say(f"[bold]execution[/] posting a batch of {len(items)} executions")
        first = await http.post(
            "/api/v1/executions/batch",
            json={"executions": items},
            headers={"Idempotency-Key": key},
        )
        body = first.json()
        failures = [
            f"#{r['requestIndex']}: {r['message']}"
            for r in body["results"]
            if r["status"] == "FAILED"
        ]
        lines.append(
            DemoLine(
                SERVICE,
                f"POST /executions/batch ({len(items)} items)",
                f"HTTP {first.status_code} {body['status']}: {body['message']}; "
                + "; ".join(failures),
            )
        )
        created = [r["execution"] for r in body["results"] if r["execution"]]
        stamped = sum(1 for e in created if e["sentTimestamp"])
        lines.append(
            DemoLine(
                SERVICE,
                "broker acknowledged before the answer",
                f"{stamped} of {len(created)} have sentTimestamp "
                f"(publish wait {settings.publish_wait_ms} ms)",
            )
        )
        again = await http.post(
            "/api/v1/executions/batch",
            json={"executions": items},
            headers={"Idempotency-Key": key},
        )
        same = again.content == first.content
        lines.append(
            DemoLine(
                SERVICE,
                "same batch, same Idempotency-Key",
                f"HTTP {again.status_code}, replayed={again.headers.get('idempotent-replayed')}, "
                f"identical body={same}, no new rows",
            )
        )
        target = created[0]
        half = Decimal(str(target["quantity"])) / 2
        fill = await http.put(
            f"/api/v1/execution/{target['id']}",
            json={
                "quantityFilled": float(half),
                "averagePrice": 101.25,
                "version": target["version"],
            },
        )
        filled = fill.json()
        lines.append(
            DemoLine(
                SERVICE,
                f"PUT /execution/{target['id']} (half filled)",
                f"HTTP {fill.status_code}: status {filled.get('executionStatus')}, "
                f"version {target['version']} -> {filled.get('version')}",
            )
        )
        stale = await http.put(
            f"/api/v1/execution/{target['id']}",
            json={
                "quantityFilled": float(half),
                "averagePrice": 101.25,
                "version": target["version"],
            },
        )
        lines.append(
            DemoLine(
                SERVICE,
                "same fill with the old version",
                f"HTTP {stale.status_code}, currentVersion {stale.json().get('currentVersion')}",
            )
        )
        page = (
            await http.get("/api/v1/executions", params={"sortBy": "-quantity,id", "limit": 5})
        ).json()
        top = ", ".join(f"#{e['id']} {e['quantity']:g}" for e in page["content"])
        lines.append(
            DemoLine(
                SERVICE,
                "GET /executions?sortBy=-quantity,id&limit=5",
                f"{page['pagination']['totalElements']} in total; largest: {top}",
            )
        )
    ids = {str(e["id"]) for e in created}
    records = await _consume(ctx.kafka_bootstrap, settings.orders_topic, ids, 20.0)
    sample = orjson.loads(records[0].value) if records else {}
    type_ids = {dict(r.headers).get("__TypeId__", b"").decode() for r in records}
    first_key = records[0].key.decode() if records and records[0].key else "-"
    lines.append(
        DemoLine(
            SERVICE,
            f"events on '{settings.orders_topic}'",
            f"{len(records)} of {len(ids)} created executions consumed; __TypeId__ "
            f"{', '.join(sorted(type_ids)) or '-'}; e.g. key {first_key} "
            f"→ {sample.get('tradeType')} {sample.get('quantity', 0):g} {sample.get('securityId')} "
            f"via {sample.get('destination')}",
        )
    )
    if len(records) < len(ids):
        raise RuntimeError(
            f"only {len(records)} of {len(ids)} events arrived on {settings.orders_topic}"
        )
    return lines
