"""The execution service's operations, free of HTTP: create (one or a batch), read,
list, and fill. Routes parse and render; this module decides.

It answers with domain results (ExecutionDTO dicts, :class:`BatchOutcome`) and
refuses with the domain errors of :mod:`tranche.core.errors`; the HTTP edge picks
the status codes. Batches go through an :class:`ItemWriter`: the bulk
:class:`~tranche.execution.bulk_create.BatchWriter` in production; a benchmark may
hand the app another (the original's sequential path) to measure against.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Protocol

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.errors import (
    DependencyUnavailable,
    InvalidInput,
    NotFound,
    Refused,
    VersionConflict,
)
from tranche.core.logging import get_logger
from tranche.core.outbox import Relay
from tranche.execution import repository
from tranche.execution.bulk_create import BatchWriter, Checkpoint, ItemResult
from tranche.execution.callbacks import FillDeliverer, enqueue_fill
from tranche.execution.clients.security import SecurityClient, SecurityServiceUnavailable
from tranche.execution.metrics import ExecutionMetrics
from tranche.execution.repository import SORT_FIELDS, ListQuery
from tranche.execution.schemas import execution_dto
from tranche.execution.validation import (
    Invalid,
    NewExecution,
    Rules,
    validate_fill,
    validate_filters,
    validate_item,
)

__all__ = [
    "BatchOutcome",
    "BatchStatus",
    "ExecutionService",
    "ItemWriter",
    "ListParams",
    "parse_sort",
]

log = get_logger(__name__)


def parse_sort(sort_by: str | None) -> list[tuple[str, bool]]:
    """``"-receivedTimestamp,id"`` → ``[("receivedTimestamp", True), ("id", False)]``."""
    out: list[tuple[str, bool]] = []
    unknown: list[str] = []
    for token in (sort_by or "").split(","):
        token = token.strip()
        if not token:
            continue
        descending = token.startswith("-")
        name = token[1:].strip() if descending else token
        if name not in SORT_FIELDS:
            unknown.append(name or token)
        elif name not in (n for n, _ in out):
            out.append((name, descending))
    if unknown:
        valid = ", ".join(SORT_FIELDS)
        raise InvalidInput(
            "sortBy",
            f"unknown field(s): {', '.join(unknown)}",
            f"Invalid sortBy field(s): {', '.join(unknown)}. Valid fields: {valid}",
        )
    return out or [("id", False)]


def _values(text: str | None) -> list[str] | None:
    if text is None:
        return None
    values = [v.strip() for v in text.split(",") if v.strip()]
    return values or None


@dataclass
class ListParams:
    offset: int = 0
    limit: int = 50
    execution_status: str | None = None
    trade_type: str | None = None
    destination: str | None = None
    ticker: str | None = None
    sort_by: str | None = None


BatchStatus = Literal["SUCCESS", "PARTIAL_SUCCESS", "FAILED"]


@dataclass(frozen=True)
class BatchOutcome:
    """What became of a batch: each item's result in request order, and the verdict."""

    results: Sequence[ItemResult]

    @cached_property
    def succeeded(self) -> int:  # read by status, message and the answer: counted once
        return sum(1 for r in self.results if r.dto is not None)

    @property
    def failed(self) -> int:
        return len(self.results) - self.succeeded

    @property
    def status(self) -> BatchStatus:
        if self.succeeded == len(self.results):
            return "SUCCESS"
        return "FAILED" if self.succeeded == 0 else "PARTIAL_SUCCESS"

    @property
    def message(self) -> str:
        if self.status == "SUCCESS":
            return "All executions created successfully"
        if self.status == "FAILED":
            return "All executions failed"
        return f"{self.succeeded} of {len(self.results)} executions created successfully"


class ItemWriter(Protocol):
    """Writes validated items and says what became of each, in request order."""

    async def create(
        self,
        items: Sequence[NewExecution | Invalid],
        *,
        resume: dict[str, Any] | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> list[ItemResult]: ...


class ExecutionService:
    def __init__(
        self,
        db: Database,
        writer: BatchWriter,
        security: SecurityClient,
        metrics: ExecutionMetrics,
        rules: Rules,
        *,
        relay: Relay | None,
        deliverer: FillDeliverer | None,
        batch_writer: ItemWriter | None = None,
        publish_wait_s: float,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.writer = writer
        self.security = security
        self.metrics = metrics
        self.rules = rules
        self.relay = relay
        self.deliverer = deliverer
        #: Writes batches; the bulk writer (which also writes single creates) unless replaced.
        self.batch_writer: ItemWriter = batch_writer or writer
        self.publish_wait_s = publish_wait_s
        self.clock = clock

    # -- create ----------------------------------------------------------------------
    async def _await_sent(self, results: Sequence[ItemResult]) -> None:
        """Wait (briefly) for the broker's acks and copy ``sentTimestamp`` into the DTOs."""
        pending = {r.event_id: r.dto for r in results if r.event_id is not None and r.dto}
        if not pending or self.relay is None or self.publish_wait_s <= 0:
            return
        start = time.perf_counter()
        sent = await self.relay.wait_sent_at(list(pending), self.publish_wait_s)
        self.metrics.publish_wait.observe(time.perf_counter() - start)
        self.metrics.publish_unconfirmed.inc(len(pending) - len(sent))
        by_id: dict[int, dict[str, Any]] = {}
        for event_id, at in sent.items():
            if at is None:  # sent by another replica: read the instant it stored
                by_id[int(pending[event_id]["id"])] = pending[event_id]
            else:  # this process sent it: the instant the event carries and the hook stored
                pending[event_id]["sentTimestamp"] = at
        if not by_id:
            return
        async with self.db.sessions() as s:
            stamps = await repository.sent_timestamps(s, by_id)
        for execution_id, stamp in stamps.items():
            by_id[execution_id]["sentTimestamp"] = stamp

    async def create_batch(
        self,
        raw_items: list[Any],
        resume: dict[str, Any] | None,
        checkpoint: Checkpoint | None,
    ) -> BatchOutcome:
        start = time.perf_counter()
        self.metrics.batch_size.observe(len(raw_items))
        items = [validate_item(raw, self.rules) for raw in raw_items]
        results = await self.batch_writer.create(items, resume=resume, checkpoint=checkpoint)
        await self._await_sent(results)
        outcome = BatchOutcome(results)
        invalid = sum(1 for it in items if isinstance(it, Invalid))
        ok = outcome.succeeded
        self.metrics.items.labels("succeeded").inc(ok)
        self.metrics.items.labels("failed_validation").inc(invalid)
        self.metrics.items.labels("failed_database").inc(len(results) - ok - invalid)
        self.metrics.created.labels("batch").inc(sum(1 for r in results if r.event_id))
        self.metrics.batch_duration.labels(outcome.status).observe(time.perf_counter() - start)
        return outcome

    async def create_one(
        self, raw: Any, resume: dict[str, Any] | None, checkpoint: Checkpoint | None
    ) -> dict[str, Any]:
        """The ExecutionDTO of the execution created."""
        item = validate_item(raw, self.rules)
        if isinstance(item, Invalid):
            raise InvalidInput(item.field, item.message, f"Validation failed: {item.message}")
        [result] = await self.writer.create([item], resume=resume, checkpoint=checkpoint)
        if not result.ok:
            raise Refused(result.message or "Execution could not be created")
        await self._await_sent([result])
        assert result.dto is not None
        if result.event_id:
            self.metrics.created.labels("single").inc()
        return result.dto

    # -- read ------------------------------------------------------------------------
    async def get(self, execution_id: int) -> dict[str, Any]:
        async with self.db.sessions() as s:
            row = await repository.get(s, execution_id)
        if row is None:
            raise NotFound(f"Execution {execution_id} not found")
        tickers = await self.security.tickers_for([row["security_id"]])
        return execution_dto(row, tickers.get(row["security_id"]))

    async def _security_ids(self, ticker: str) -> list[str]:
        if not self.security.enabled:
            raise InvalidInput(
                "ticker",
                "security service not configured",
                "The ticker filter needs the security service: "
                "EXECUTION_SECURITY_SERVICE_BASE_URL is not set",
            )
        out: list[str] = []
        for t in _values(ticker) or []:
            try:
                sid = await self.security.security_id_for(t)
            except SecurityServiceUnavailable as exc:
                raise DependencyUnavailable(
                    f"Cannot resolve ticker '{t}': {exc}", retry_after_s=10
                ) from None
            if sid is not None:
                out.append(sid)
        return out

    async def page(self, params: ListParams) -> dict[str, Any]:
        bad = validate_filters(
            {
                "executionStatus": params.execution_status,
                "tradeType": params.trade_type,
                "destination": params.destination,
                "ticker": params.ticker,
                "sortBy": params.sort_by,
            }
        )
        if bad is not None:
            raise InvalidInput(bad.field, bad.message, f"Validation failed: {bad.message}")
        query = ListQuery(
            offset=params.offset,
            limit=params.limit,
            statuses=_values(params.execution_status),
            trade_types=_values(params.trade_type),
            destinations=_values(params.destination),
            sort=parse_sort(params.sort_by),
        )
        if params.ticker is not None and params.ticker.strip():
            query.security_ids = await self._security_ids(params.ticker)
        async with self.db.sessions() as s:
            rows, total = await repository.page(s, query)
        tickers = await self.security.tickers_for(r["security_id"] for r in rows)
        limit = params.limit
        return {
            "content": [execution_dto(r, tickers.get(r["security_id"])) for r in rows],
            "pagination": {
                "offset": params.offset,
                "limit": limit,
                "totalElements": total,
                "totalPages": (total + limit - 1) // limit,
                "currentPage": params.offset // limit,
                "hasNext": params.offset + limit < total,
                "hasPrevious": params.offset > 0,
            },
        }

    # -- fill ------------------------------------------------------------------------
    async def fill(self, execution_id: int, raw: Any) -> dict[str, Any]:
        fill = validate_fill(raw)
        if isinstance(fill, Invalid):
            self.metrics.fills.labels("invalid").inc()
            raise InvalidInput(fill.field, fill.message, f"Validation failed: {fill.message}")
        callback = False
        async with self.db.transaction() as s:
            row = await repository.get(s, execution_id)
            if row is None:
                self.metrics.fills.labels("not_found").inc()
                raise NotFound(f"Execution {execution_id} not found")
            current = int(row["version"])
            if current == fill.version and fill.quantity_filled > row["quantity"]:
                self.metrics.fills.labels("invalid").inc()
                message = (
                    f"Quantity filled ({fill.quantity_filled}) cannot exceed the execution's "
                    f"quantity ({row['quantity']})"
                )
                raise InvalidInput("quantityFilled", message, message)
            status = "PART" if fill.quantity_filled < row["quantity"] else "FULL"
            applied = current == fill.version and await repository.apply_fill(
                s, execution_id, fill.version, fill.quantity_filled, fill.average_price, status
            )
            if not applied:
                latest = await repository.get(s, execution_id)
                current = int(latest["version"]) if latest is not None else current
                self.metrics.fills.labels("conflict").inc()
                raise VersionConflict(
                    f"Version mismatch: execution {execution_id} is at version {current}, "
                    f"the request carried {fill.version}",
                    current_version=current,
                )
            tsid = row["trade_service_execution_id"]
            if tsid is not None and self.deliverer is not None:
                superseded = await enqueue_fill(
                    s,
                    execution_id=execution_id,
                    trade_service_execution_id=int(tsid),
                    execution_status=status,
                    quantity_filled=fill.quantity_filled,
                    average_price=fill.average_price,
                    now=self.clock(),
                )
                callback = True
                self.metrics.callbacks.labels("superseded").inc(superseded)
            updated = await repository.get(s, execution_id)
        assert updated is not None
        self.metrics.fills.labels(status.lower()).inc()
        if callback and self.deliverer is not None:
            self.deliverer.wake()
        tickers = await self.security.tickers_for([updated["security_id"]])
        return execution_dto(updated, tickers.get(updated["security_id"]))
