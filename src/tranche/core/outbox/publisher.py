"""Publishes records to Kafka with aiokafka and says, per record, what happened.

Client choice (measured on the embedded broker, 20 000 records of ~150 bytes):
aiokafka ``send()`` ~50 000 records/s, aiokafka ``send_batch()`` ~120 000/s,
confluent-kafka (idempotent, librdkafka threads) ~140 000/s once warm. The
relay's database round trips cost far more than either client, so aiokafka —
native asyncio, no thread bridge for delivery callbacks — is used with
``send_batch``: records are partitioned here with Kafka's murmur2
partitioner (the same partition a Java producer picks for a key) and appended
to one batch per partition, in order, which also keeps the order per key.
Idempotence follows ``KafkaSettings.enable_idempotence`` (real clusters: on;
the embedded Tansu broker refuses aiokafka's InitProducerId, so it is off there).

Every failure is classified, because they mean different things to the relay:
``unavailable`` (the broker cannot be reached: the row is not charged an
attempt, the circuit breaker counts it), ``retriable`` (this record failed
but may succeed later: an attempt is charged) and ``permanent`` (it can never
be sent as is: straight to the dead-letter topic).

While the broker is down aiokafka's sender retries every ``retry_backoff_ms`` and
logs each failed connect and metadata refresh at ERROR — about 25 lines a second
per producer. :class:`RepeatedLogFilter` lets each distinct message through once
per ``REPEAT_WINDOW_S`` and tells, on the next one it lets through, how many it
held back; the relay's own ``outbox_broker_unavailable`` / ``outbox_circuit``
lines say what is going on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kerr
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from tranche.core.logging import get_logger
from tranche.core.settings import KafkaSettings

__all__ = [
    "BrokerUnavailableError",
    "Delivered",
    "Failed",
    "Publisher",
    "Record",
    "RepeatedLogFilter",
    "classify",
]

log = get_logger(__name__)

#: Each distinct aiokafka message is logged at most once per this many seconds.
REPEAT_WINDOW_S = 10.0


class RepeatedLogFilter(logging.Filter):
    """Passes a record whose message template was not seen in the last ``window_s``;
    the record that ends a quiet window says how many were held back."""

    def __init__(self, window_s: float = REPEAT_WINDOW_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._seen: dict[tuple[str, Any], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        if held and isinstance(record.args, tuple):
            record.msg = f"{record.msg} (%d similar lines held back in the last %.0fs)"
            record.args = (*record.args, held, self.window_s)
        return True


_REPEATED = RepeatedLogFilter()


def _quiet_aiokafka() -> None:
    """The filter on every aiokafka logger there is (a logger's filters do not see its
    children's records, so the package logger alone would not do); run at import and
    again for each publisher, for modules aiokafka imported in between."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "aiokafka"]
    for name in ["aiokafka", *names]:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatedLogFilter) for f in logger.filters):
            logger.addFilter(_REPEATED)


_quiet_aiokafka()

FailureKind = Literal["unavailable", "retriable", "permanent"]

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    kerr.KafkaConnectionError,
    kerr.NodeNotReadyError,
    kerr.RequestTimedOutError,
    kerr.KafkaTimeoutError,
    kerr.LeaderNotAvailableError,
    kerr.NotLeaderForPartitionError,
    kerr.NotEnoughReplicasError,
    kerr.NotEnoughReplicasAfterAppendError,
    kerr.NoBrokersAvailable,
    kerr.ProducerClosed,
    ConnectionError,
    TimeoutError,
)


class BrokerUnavailableError(RuntimeError):
    """The broker did not answer."""


# NamedTuples, not dataclasses: tens of thousands are made per second.
class Record(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


class Delivered(NamedTuple):
    partition: int
    offset: int


class Failed(NamedTuple):
    error: str
    kind: FailureKind


Outcome = Delivered | Failed


def describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return (text if text.startswith(name) else f"{name}: {text}" if text else name)[:500]


# Errors that say the record itself can never be accepted as it is. Anything else the
# broker answers (UnknownError included: Tansu returns it around restarts) is retried.
_PERMANENT: tuple[type[BaseException], ...] = (
    kerr.MessageSizeTooLargeError,
    kerr.RecordListTooLargeError,
    kerr.InvalidTopicError,
    kerr.TopicAuthorizationFailedError,
    kerr.ClusterAuthorizationFailedError,
    kerr.CorruptRecordException,
    kerr.UnsupportedForMessageFormatError,
)


def classify(exc: BaseException) -> FailureKind:
    if isinstance(exc, _UNAVAILABLE):
        return "unavailable"
    if isinstance(exc, _PERMANENT):
        return "permanent"
    return "retriable"


def record_size(record: Record) -> int:
    return int(
        DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, record.headers)
    )


class Publisher:
    """One lazily started aiokafka producer; ``publish`` never raises for broker trouble."""

    def __init__(self, kafka: KafkaSettings, max_message_bytes: int) -> None:
        if not kafka.bootstrap_servers:
            raise ValueError("KAFKA_BOOTSTRAP_SERVERS: not set (start the embedded broker first)")
        _quiet_aiokafka()
        self._kafka = kafka
        self.max_message_bytes = max_message_bytes
        self._producer: AIOKafkaProducer | None = None
        # Every producer not yet stopped, and how many publish calls are using each: a
        # reset while another round still waits on its acks stops the old producer only
        # when that round is done (stopping it earlier can leave the acks unresolved).
        self._open: dict[AIOKafkaProducer, int] = {}
        self._partitioner = DefaultPartitioner()
        self._lock = asyncio.Lock()

    @property
    def bootstrap(self) -> str:
        return str(self._kafka.bootstrap_servers)

    async def _acquire(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is not None:
                self._open[self._producer] += 1
                return self._producer
            producer = AIOKafkaProducer(
                **self._kafka.client_options("producer"),
                max_batch_size=self.max_message_bytes,
                max_request_size=self.max_message_bytes + 64 * 1024,
                linger_ms=0,
            )
            self._open[producer] = 1
            try:
                await producer.start()
            except BaseException:
                await self._stop(producer)
                raise
            self._producer = producer
            return producer

    async def _release(self, producer: AIOKafkaProducer) -> None:
        async with self._lock:
            users = self._open.get(producer)
            if users is None:
                return
            self._open[producer] = users - 1
            retired = users <= 1 and producer is not self._producer
        if retired:
            await self._stop(producer)

    async def _stop(self, producer: AIOKafkaProducer) -> None:
        self._open.pop(producer, None)
        try:
            await producer.stop()
        except Exception as exc:  # closing a producer whose broker is gone
            log.warning("outbox_producer_close_failed", error=describe(exc))

    async def reset(self) -> None:
        """Drop the producer (its connections and metadata); the next call starts a fresh one."""
        async with self._lock:
            producer, self._producer = self._producer, None
            idle = producer is not None and self._open.get(producer, 0) == 0
        if producer is not None and idle:
            await self._stop(producer)

    async def close(self) -> None:
        """Stop every producer, in use or not (call when no round runs any more)."""
        async with self._lock:
            self._producer = None
            producers = list(self._open)
        for producer in producers:
            await self._stop(producer)

    async def ping(self) -> dict[str, Any]:
        """Raise :class:`BrokerUnavailableError` unless the broker answers a metadata request."""
        try:
            producer = await self._acquire()
        except Exception as exc:
            raise BrokerUnavailableError(f"broker unreachable: {describe(exc)}") from None
        try:
            ok = await producer.client.force_metadata_update()
            brokers = len(producer.client.cluster.brokers())
        except Exception as exc:
            raise BrokerUnavailableError(f"broker unreachable: {describe(exc)}") from None
        finally:
            await self._release(producer)
        if not ok:
            raise BrokerUnavailableError("broker unreachable: metadata request failed")
        return {"bootstrap": self.bootstrap, "brokers": brokers}

    async def publish(self, records: Sequence[Record]) -> list[Outcome]:
        """Send ``records`` (in order per partition) and wait for every acknowledgement."""
        out: list[Outcome | None] = [None] * len(records)
        limit = self.max_message_bytes
        for i, r in enumerate(records):
            # The exact estimate only near the limit: a cheap upper bound clears most records.
            rough = (
                len(r.value) + len(r.key or b"") + sum(len(k) + len(v) + 10 for k, v in r.headers)
            )
            if rough + 128 <= limit:  # batch header 61 bytes, record overhead < 30
                continue
            size = record_size(r)
            if size > limit:
                out[i] = Failed(
                    f"record of {size} bytes exceeds max_message_bytes={self.max_message_bytes}",
                    "permanent",
                )
        todo = [i for i, o in enumerate(out) if o is None]
        if todo:
            try:
                producer = await self._acquire()
            except Exception as exc:
                failed = Failed(describe(exc), "unavailable")
                for i in todo:
                    out[i] = failed
                return [o for o in out if o is not None]
            try:
                await self._send(producer, records, todo, out, isolate=True)
            finally:
                await self._release(producer)
        return [o if o is not None else Failed("not sent", "retriable") for o in out]

    async def _acks(self, futures: list[Any]) -> list[Any]:
        """Every future's result or exception; one still open after the producer's own
        expiry (request timeout) plus a margin counts as a timeout, never a hang."""
        if not futures:
            return []
        limit = 2 * self._kafka.request_timeout_ms / 1000 + 5
        done, _ = await asyncio.wait(futures, timeout=limit)
        out: list[Any] = []
        for f in futures:
            if f not in done:
                f.cancel()
                out.append(KafkaTimeoutError(f"no acknowledgement within {limit:.0f}s"))
            elif f.cancelled():
                out.append(KafkaTimeoutError("acknowledgement cancelled"))
            else:
                exc = f.exception()
                out.append(exc if exc is not None else f.result())
        return out

    async def _partitions(self, producer: AIOKafkaProducer, topic: str) -> list[int] | Failed:
        try:
            return sorted(await producer.partitions_for(topic))
        except kerr.UnknownTopicOrPartitionError:
            # aiokafka says this both for a topic that does not exist and for a broker it
            # could not ask; a successful metadata round trip tells them apart.
            if await producer.client.force_metadata_update():
                return Failed(f"unknown topic '{topic}'", "permanent")
            return Failed("broker unreachable while fetching metadata", "unavailable")
        except Exception as exc:
            return Failed(describe(exc), classify(exc))

    async def _send(
        self,
        producer: AIOKafkaProducer,
        records: Sequence[Record],
        todo: list[int],
        out: list[Outcome | None],
        isolate: bool,
    ) -> None:
        partitions: dict[str, list[int] | Failed] = {}
        batches: list[tuple[Any, str, int, list[int]]] = []
        open_batch: dict[tuple[str, int], tuple[Any, list[int]]] = {}
        for i in todo:
            r = records[i]
            if r.topic not in partitions:
                partitions[r.topic] = await self._partitions(producer, r.topic)
            parts = partitions[r.topic]
            if isinstance(parts, Failed):
                out[i] = parts
                continue
            if r.key is None:
                partition = random.choice(parts)
            else:
                partition = self._partitioner(r.key, parts, parts)
            tp = (r.topic, partition)
            entry = open_batch.get(tp)
            if (
                entry is None
                or entry[0].append(key=r.key, value=r.value, timestamp=None, headers=r.headers)
                is None
            ):
                if entry is not None:
                    batches.append((entry[0], r.topic, partition, entry[1]))
                builder = producer.create_batch()
                builder.append(key=r.key, value=r.value, timestamp=None, headers=r.headers)
                entry = open_batch[tp] = (builder, [])
            entry[1].append(i)
        batches.extend((b, t, p, idx) for (t, p), (b, idx) in open_batch.items())
        batches.sort(key=lambda b: b[3][0])

        futures: list[Any] = []
        for builder, topic, partition, _ in batches:
            try:
                futures.append(await producer.send_batch(builder, topic, partition=partition))
            except Exception as exc:
                futures.append(exc)
        waiting = [f for f in futures if not isinstance(f, BaseException)]
        results = iter(await self._acks(waiting))
        retry_alone: list[int] = []
        for (_, _, partition, idx), fut in zip(batches, futures, strict=True):
            res = fut if isinstance(fut, BaseException) else next(results)
            if isinstance(res, BaseException):
                kind = classify(res)
                if isolate and kind != "unavailable" and len(idx) > 1:
                    # One bad record fails its whole batch; send each alone to find it.
                    retry_alone.extend(idx)
                    continue
                failed = Failed(describe(res), kind)
                for i in idx:
                    out[i] = failed
            else:
                for n, i in enumerate(idx):
                    out[i] = Delivered(partition, int(res.offset) + n)
        for i in retry_alone:
            await self._send(producer, records, [i], out, isolate=False)
