"""Two execution-service replicas (``tranche serve execution`` processes) on one PostgreSQL
database, clients round-robin over them, both relays running: every committed event is
published exactly once by its ``event-id``, and the throughput is reported against one
replica on the same database (a FIGURE line; docs/reliability.md).

One replica serves the first part of the load alone; a second one is started beside it
and the rest is posted to both in turn. Both relays then share one outbox table, which
is what ``FOR UPDATE SKIP LOCKED`` in the claim has to make safe.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.broker import unique_topic
from tests.fixtures.servers import postgres_databases
from tests.reliability.harness import Load, delivered, execution_replicas, plain_dsn, post_load
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

#: Executions each replica creates before it is timed (connections, caches, first requests).
WARM_UP = 200


async def _one_then_two(
    broker: EmbeddedBroker, tmp_path: Path, per_phase: int, clients: int
) -> dict[str, object]:
    topic = unique_topic("orders")
    settings = {"max_batch_size": "1000"}
    async with postgres_databases() as factory:
        url = await factory("replicas")
        async with execution_replicas(
            1, url, broker.bootstrap_servers, topic, tmp_path / "a", **settings
        ) as (first,):
            await post_load([first], WARM_UP, load=Load())
            one = await post_load([first], per_phase, clients=clients, load=Load())
            async with execution_replicas(
                1, url, broker.bootstrap_servers, topic, tmp_path / "b", **settings
            ) as (second,):
                await post_load([second], WARM_UP, load=Load())
                two = await post_load([first, second], per_phase, clients=clients, load=Load())
                delivery = await delivered(plain_dsn(url), broker.bootstrap_servers, topic)
    for load in (one, two):
        assert load.statuses == {201: per_phase // 100}, load.statuses
    assert delivery.committed == 2 * (per_phase + WARM_UP)
    assert (delivery.missing, delivery.duplicated, delivery.unknown) == (0, 0, 0), delivery
    rate_one, rate_two = per_phase / one.seconds, per_phase / two.seconds
    return {
        "one_replica_per_s": round(rate_one),
        "two_replicas_per_s": round(rate_two),
        "ratio": round(rate_two / rate_one, 2),
        "delivered": delivery.distinct,
        "duplicated": delivery.duplicated,
    }


@pytest.mark.timeout(600)  # starting `tranche serve` costs ~15 s of CPU on a busy machine
async def test_two_replicas_publish_every_event_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    figures = await _one_then_two(broker, tmp_path, per_phase=1000, clients=4)
    print(f"FIGURE replicas executions=2x1000 clients=4 {figures}")


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_two_replicas_long(broker: EmbeddedBroker, tmp_path: Path) -> None:
    figures = await _one_then_two(broker, tmp_path, per_phase=20_000, clients=8)
    print(f"FIGURE replicas-long executions=2x20000 clients=8 {figures}")
