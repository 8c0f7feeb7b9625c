"""The execution service's operations, free of HTTP: create (one or a batch), read,
list, and fill. Routes parse and render; this module decides."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.errors import ApiError
from tranche.core.logging import get_logger
from tranche.core.outbox import Relay
from tranche.execution import repository
from tranche.execution.bulk_create import BatchWriter, Checkpoint, ItemResult
from tranche.execution.callbacks import FillDeliverer, enqueue_fill
from tranche.execution.clients.security import SecurityClient, SecurityServiceUnavailable
from tranche.execution.idempotent import Rendered
from tranche.execution.metrics import ExecutionMetrics
from tranche.execution.repository import SORT_FIELDS, ListQuery
from tranche.execution.schemas import dumps, execution_dto
from tranche.execution.sequential import SequentialWriter
from tranche.execution.validation import Invalid, Rules, validate_fill, validate_item

__all__ = ["ExecutionService", "ListParams", "batch_body", "parse_sort"]

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
        raise ApiError(
            400,
            f"Invalid sortBy field(s): {', '.join(unknown)}. Valid fields: {valid}",
            validation_errors={"sortBy": f"unknown field(s): {', '.join(unknown)}"},
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


def batch_body(results: Sequence[ItemResult]) -> tuple[int, dict[str, Any]]:
    """HTTP status and BatchExecutionResponseDTO of a batch (reference A7)."""
    total = len(results)
    ok = sum(1 for r in results if r.ok)
    if ok == total:
        status, code, message = "SUCCESS", 201, "All executions created successfully"
    elif ok == 0:
        status, code, message = "FAILED", 400, "All executions failed"
    else:
        status, code = "PARTIAL_SUCCESS", 207
        message = f"{ok} of {total} executions created successfully"
    body = {
        "status": status,
        "message": message,
        "totalRequested": total,
        "successful": ok,
        "failed": total - ok,
        "results": [
            {
                "requestIndex": r.index,
                "status": "SUCCESS" if r.ok else "FAILED",
                "message": r.message,
                "execution": r.dto,
            }
            for r in results
        ],
    }
    return code, body


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
        sequential: SequentialWriter | None = None,
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
        self.sequential = sequential
        self.publish_wait_s = publish_wait_s
        self.clock = clock

    # -- create ----------------------------------------------------------------------
    async def _await_sent(self, results: Sequence[ItemResult]) -> None:
        """Wait (briefly) for the broker's acks and copy ``sentTimestamp`` into the DTOs."""
        pending = {r.event_id: r.dto for r in results if r.event_id is not None and r.dto}
        if not pending or self.relay is None or self.publish_wait_s <= 0:
            return
        start = time.perf_counter()
        sent = await self.relay.wait_sent(list(pending), self.publish_wait_s)
        self.metrics.publish_wait.observe(time.perf_counter() - start)
        self.metrics.publish_unconfirmed.inc(len(pending) - len(sent))
        if not sent:
            return
        by_id = {int(pending[e]["id"]): pending[e] for e in sent}
        async with self.db.sessions() as s:
            stamps = await repository.sent_timestamps(s, by_id)
        for execution_id, stamp in stamps.items():
            by_id[execution_id]["sentTimestamp"] = stamp

    async def create_batch(
        self,
        raw_items: list[Any],
        resume: dict[str, Any] | None,
        checkpoint: Checkpoint | None,
    ) -> Rendered:
        start = time.perf_counter()
        self.metrics.batch_size.observe(len(raw_items))
        items = [validate_item(raw, self.rules) for raw in raw_items]
        if self.sequential is not None and not resume:
            results = await self.sequential.create(items, checkpoint)
        else:
            results = await self.writer.create(items, resume=resume, checkpoint=checkpoint)
            await self._await_sent(results)
        code, body = batch_body(results)
        invalid = sum(1 for it in items if isinstance(it, Invalid))
        ok = sum(1 for r in results if r.ok)
        self.metrics.items.labels("succeeded").inc(ok)
        self.metrics.items.labels("failed_validation").inc(invalid)
        self.metrics.items.labels("failed_database").inc(len(results) - ok - invalid)
        self.metrics.created.labels("batch").inc(sum(1 for r in results if r.event_id))
        self.metrics.batch_duration.labels(str(body["status"])).observe(time.perf_counter() - start)
        return Rendered(code, dumps(body))

    async def create_one(
        self, raw: Any, resume: dict[str, Any] | None, checkpoint: Checkpoint | None
    ) -> Rendered:
        item = validate_item(raw, self.rules)
        if isinstance(item, Invalid):
            raise ApiError(
                400,
                f"Validation failed: {item.message}",
                validation_errors={item.field: item.message},
            )
        [result] = await self.writer.create([item], resume=resume, checkpoint=checkpoint)
        if not result.ok:
            raise ApiError(400, result.message or "Execution could not be created")
        await self._await_sent([result])
        assert result.dto is not None
        if result.event_id:
            self.metrics.created.labels("single").inc()
        location = f"/api/v1/execution/{result.dto['id']}"
        return Rendered(201, dumps(result.dto), {"Location": location})

    # -- read ------------------------------------------------------------------------
    async def get(self, execution_id: int) -> dict[str, Any]:
        async with self.db.sessions() as s:
            row = await repository.get(s, execution_id)
        if row is None:
            raise ApiError(404, f"Execution {execution_id} not found")
        tickers = await self.security.tickers_for([row["security_id"]])
        return execution_dto(row, tickers.get(row["security_id"]))

    async def _security_ids(self, ticker: str) -> list[str]:
        if not self.security.enabled:
            raise ApiError(
                400,
                "The ticker filter needs the security service: "
                "EXECUTION_SECURITY_SERVICE_BASE_URL is not set",
                validation_errors={"ticker": "security service not configured"},
            )
        out: list[str] = []
        for t in _values(ticker) or []:
            try:
                sid = await self.security.security_id_for(t)
            except SecurityServiceUnavailable as exc:
                raise ApiError(
                    503, f"Cannot resolve ticker '{t}': {exc}", headers={"Retry-After": "10"}
                ) from None
            if sid is not None:
                out.append(sid)
        return out

    async def page(self, params: ListParams) -> dict[str, Any]:
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
            raise ApiError(
                400,
                f"Validation failed: {fill.message}",
                validation_errors={fill.field: fill.message},
            )
        callback = False
        async with self.db.transaction() as s:
            row = await repository.get(s, execution_id)
            if row is None:
                self.metrics.fills.labels("not_found").inc()
                raise ApiError(404, f"Execution {execution_id} not found")
            current = int(row["version"])
            if current == fill.version and fill.quantity_filled > row["quantity"]:
                self.metrics.fills.labels("invalid").inc()
                message = (
                    f"Quantity filled ({fill.quantity_filled}) cannot exceed the execution's "
                    f"quantity ({row['quantity']})"
                )
                raise ApiError(400, message, validation_errors={"quantityFilled": message})
            status = "PART" if fill.quantity_filled < row["quantity"] else "FULL"
            applied = current == fill.version and await repository.apply_fill(
                s, execution_id, fill.version, fill.quantity_filled, fill.average_price, status
            )
            if not applied:
                latest = await repository.get(s, execution_id)
                current = int(latest["version"]) if latest is not None else current
                self.metrics.fills.labels("conflict").inc()
                raise ApiError(
                    409,
                    f"Version mismatch: execution {execution_id} is at version {current}, "
                    f"the request carried {fill.version}",
                    extra={"currentVersion": current},
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
