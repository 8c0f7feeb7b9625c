from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from tests.fixtures.broker import unique_topic
from tests.fixtures.waiting import consume
from tranche.core.broker import BrokerError, EmbeddedBroker


async def test_produce_and_consume_round_trip(kafka_bootstrap: str) -> None:
    topic = unique_topic("roundtrip")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=b"k", headers=[("h", b"1")])
    finally:
        await producer.stop()
    records = await consume(kafka_bootstrap, topic, expected=3)
    assert [r.value for r in records] == [b"v0", b"v1", b"v2"]
    assert all(r.headers == (("h", b"1"),) for r in records)


async def test_broker_restarts_on_the_same_port(private_broker: EmbeddedBroker) -> None:
    private_broker.start()
    await private_broker.wait_ready()
    port = private_broker.port
    private_broker.stop()
    assert not private_broker.running
    with pytest.raises(BrokerError):
        await private_broker.wait_ready(timeout_s=0.5)
    private_broker.start()
    await private_broker.wait_ready()
    assert private_broker.port == port and private_broker.running
