"""The original's batch path, kept only to measure the new one against (NOT for production).

Nothing in the service builds it: the benchmarks pass :func:`sequential_writer` to
``create_app(settings, batch_writer=...)`` (``tranche bench execution`` runs it in a
server of its own, :mod:`tranche.bench._sequential_server`). The whole batch in one
transaction, one INSERT per item, and for each item a Kafka send awaited before the next — inside
the transaction, so an event can be published for a row that then rolls back (the
original's bug C12), and a slow broker holds every row lock of the batch. A failed
send is logged and does not change the answer, as in the original. Validation,
the answer and ``sentTimestamp`` (set after the send) are the same as the bulk
path's, so benchmarks compare like with like. A resumed idempotent request (the
first attempt died half-way) is finished by the bulk writer, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.exc import DBAPIError

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.settings import KafkaSettings
from tranche.execution import repository
from tranche.execution.app import WriterParts
from tranche.execution.bulk_create import (
    BatchWriter,
    Checkpoint,
    ItemResult,
    db_error_message,
    is_row_error,
)
from tranche.execution.bulk_insert import NewRow, insert_one
from tranche.execution.clients.security import SecurityClient
from tranche.execution.events import TYPE_ID_HEADER
from tranche.execution.schemas import dumps, execution_dto
from tranche.execution.validation import Invalid, NewExecution

__all__ = ["SequentialWriter", "sequential_writer"]

log = get_logger(__name__)


class SequentialWriter:
    strategy = "sequential"

    def __init__(
        self,
        db: Database,
        kafka: KafkaSettings,
        *,
        security: SecurityClient,
        bulk: BatchWriter,
        topic: str,
        type_id: str,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.bulk = bulk
        self.kafka = kafka
        self.security = security
        self.topic = topic
        self.type_id = type_id
        self.clock = clock
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(**self.kafka.client_options("producer"))
                await producer.start()
                self._producer = producer
            return self._producer

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def _send(self, dto: dict[str, Any]) -> bool:
        try:
            producer = await self._ensure()
            await producer.send_and_wait(
                self.topic,
                value=dumps(dto),
                key=str(dto["id"]).encode(),
                headers=[(TYPE_ID_HEADER, self.type_id.encode())],
            )
        except Exception as exc:  # the original logged and went on
            log.warning("sequential_publish_failed", execution_id=dto["id"], error=repr(exc))
            return False
        return True

    async def create(
        self,
        items: Sequence[NewExecution | Invalid],
        *,
        resume: dict[str, Any] | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> list[ItemResult]:
        if resume:
            return await self.bulk.create(items, resume=resume, checkpoint=checkpoint)
        results = [ItemResult(i) for i in range(len(items))]
        security_ids = {it.security_id for it in items if isinstance(it, NewExecution)}
        tickers = await self.security.tickers_for(security_ids) if security_ids else {}
        received = self.clock()
        savepoints = self.db.dialect != "sqlite"
        sent: set[int] = set()
        async with self.db.transaction() as session:
            for i, item in enumerate(items):
                if isinstance(item, Invalid):
                    results[i].message = item.message
                    continue
                row = NewRow(
                    execution_status=item.execution_status,
                    trade_type=item.trade_type,
                    destination=item.destination,
                    security_id=item.security_id,
                    quantity=item.quantity,
                    limit_price=item.limit_price,
                    received_timestamp=received,
                    trade_service_execution_id=item.trade_service_execution_id,
                )
                try:
                    if savepoints:
                        async with session.begin_nested():
                            execution_id = await insert_one(session, row)
                    else:
                        execution_id = await insert_one(session, row)
                except DBAPIError as exc:
                    if not is_row_error(exc):
                        raise
                    results[i].message = db_error_message(exc)
                    continue
                dto = execution_dto(
                    row.values() | {"id": execution_id}, tickers.get(row.security_id)
                )
                results[i].dto = dto
                if await self._send(dto):
                    sent.add(execution_id)
            stamp = self.clock()
            await repository.mark_sent(session, sorted(sent), stamp)
            if checkpoint is not None:
                created = {str(r.index): r.dto["id"] for r in results if r.dto is not None}
                failed = {
                    str(r.index): r.message
                    for r in results
                    if r.dto is None and not isinstance(items[r.index], Invalid)
                }
                await checkpoint(session, {"created": created, "failed": failed})
        for result in results:
            if result.dto is not None and result.dto["id"] in sent:
                result.dto["sentTimestamp"] = stamp
        return results


def sequential_writer(parts: WriterParts) -> SequentialWriter:
    """The :data:`~tranche.execution.app.WriterFactory` of the original's path."""
    settings = parts.settings
    return SequentialWriter(
        parts.db,
        settings.kafka,
        security=parts.security,
        bulk=parts.bulk,
        topic=settings.orders_topic,
        type_id=settings.kafka_type_id,
        clock=parts.clock,
    )
