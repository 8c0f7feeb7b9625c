"""Creating the ``orders`` topic at start-up, as the original did (20 partitions, RF 1).

Unlike the original, a broker that cannot be reached does not stop the service
(events wait in the outbox): the first try is bounded, later ones run in the
background (a :class:`~tranche.core.loops.BackgroundLoop`) until the topic exists.
A topic that already exists is left as it is.
"""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tranche.core.logging import get_logger
from tranche.core.loops import BackgroundLoop
from tranche.core.settings import KafkaSettings

__all__ = ["TopicProvisioner"]

log = get_logger(__name__)
TOPIC_ALREADY_EXISTS = 36


class TopicProvisioner:
    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        partitions: int,
        replication_factor: int,
        *,
        first_try_s: float = 5.0,
        retry_s: float = 30.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.first_try_s = first_try_s
        self.retry_s = retry_s
        self.done = False
        self._retries = BackgroundLoop("orders-topic", self._retry, interval_s=retry_s)

    async def create_once(self) -> None:
        """Create the topic unless it exists; raises when the broker cannot be asked."""
        options = self.kafka.client_options("admin")
        options["request_timeout_ms"] = min(self.kafka.request_timeout_ms, 10_000)
        admin = AIOKafkaAdminClient(**options)
        try:
            await admin.start()
            response = await admin.create_topics(
                [NewTopic(self.topic, self.partitions, self.replication_factor)]
            )
        finally:
            await admin.close()
        for _name, code, *rest in getattr(response, "topic_errors", []):
            if code not in (0, TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"creating topic {self.topic}: error {code} {rest}")
            log.info(
                "orders_topic_ready",
                topic=self.topic,
                created=code == 0,
                partitions=self.partitions if code == 0 else None,
            )
        self.done = True

    async def start(self) -> None:
        """One bounded try now; if it fails, keep trying in the background."""
        try:
            await asyncio.wait_for(self.create_once(), self.first_try_s)
        except Exception as exc:  # the broker may come later; events wait in the outbox
            log.warning("orders_topic_not_created_yet", topic=self.topic, error=repr(exc))
            self._retries.start(first_delay_s=self.retry_s)

    async def _retry(self) -> float | None:
        try:
            await asyncio.wait_for(self.create_once(), self.first_try_s * 2)
        except Exception as exc:
            log.warning("orders_topic_not_created_yet", topic=self.topic, error=repr(exc))
        if self.done:
            self._retries.finish()
        return None

    async def stop(self) -> None:
        await self._retries.stop()
