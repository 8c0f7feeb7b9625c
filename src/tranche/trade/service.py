"""The three submission endpoints' logic, on top of reservation and bulk submission.

* ``submit_trade_order``: one submission → one execution → the bulk path with a
  batch of one; refused → the execution removed and the order restored.
* ``submit_execution``: an existing NEW execution → the bulk path.
* ``submit_batch``: up to 100 submissions reserved in one transaction, then one
  bulk submission of every execution created; each item's result by request index.

Refusals are the domain errors of :mod:`tranche.core.errors`; the app adds the
original's ``{"error": message}`` member to their bodies at the edge
(:func:`error_members`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tranche.core.errors import (
    Conflict,
    DependencyFailed,
    DomainError,
    InvalidInput,
    NotFound,
    Refused,
)
from tranche.trade.mapping import execution_response
from tranche.trade.models import Execution
from tranche.trade.repository import TradeStore, get_execution, get_executions
from tranche.trade.reservation import Refusal, Reservation, SubmissionItem, reserve
from tranche.trade.schemas import (
    BatchSubmitRequest,
    BatchSubmitResponse,
    BatchSubmitResult,
    TradeOrderSubmit,
)
from tranche.trade.submission import BulkSubmitter, Outcome

__all__ = ["SubmissionService", "error_members"]


def error_members(error: DomainError) -> Mapping[str, Any]:
    """What the original's error bodies also carried: ``error``, the message itself."""
    return {"error": error.message}


def _outcome_error(outcome: Outcome) -> DomainError:
    message = outcome.message or "Submission failed"
    if outcome.kind == "not_found":
        return NotFound(message)
    if outcome.kind == "conflict":
        return Conflict(message)
    if outcome.kind == "rejected":
        # "Client error" is what the original's callers matched on for a 400.
        return Refused(
            message if message.startswith("Client error") else f"Client error: {message}"
        )
    if outcome.kind == "unrecorded":
        return DependencyFailed(message)
    return DependencyFailed(f"Execution service unavailable: {message}")


def _refusal_error(refusal: Refusal) -> DomainError:
    if refusal.kind == "not_found":
        return NotFound(refusal.message, field=refusal.field)
    if refusal.field:
        return InvalidInput(refusal.field, refusal.message, refusal.message)
    return Refused(refusal.message)


@dataclass
class SubmissionService:
    store: TradeStore
    submitter: BulkSubmitter

    async def _load(self, id_: int) -> Execution:
        async with self.store.read() as session:
            execution = await get_execution(session, id_)
        if execution is None:
            raise NotFound(f"Execution not found: {id_}")
        return execution

    async def submit_trade_order(
        self, trade_order_id: int, body: TradeOrderSubmit, no_execute: bool
    ) -> Execution:
        item = SubmissionItem(trade_order_id, body.quantity, body.destination_id)
        async with self.store.write() as session:
            (result,) = await reserve(session, [item])
        if isinstance(result, Refusal):
            raise _refusal_error(result)
        if not no_execute:
            outcomes = await self.submitter.submit(
                [result.execution_id], {result.execution_id: result}
            )
            outcome = outcomes[result.execution_id]
            if not outcome.ok:
                raise _outcome_error(outcome)
        return await self._load(result.execution_id)

    async def submit_execution(self, execution_id: int) -> Execution:
        outcome = (await self.submitter.submit([execution_id]))[execution_id]
        if not outcome.ok:
            raise _outcome_error(outcome)
        return await self._load(execution_id)

    async def submit_batch(
        self, request: BatchSubmitRequest, no_execute: bool
    ) -> BatchSubmitResponse:
        items = [
            SubmissionItem(s.trade_order_id, s.quantity, s.destination_id)
            for s in request.submissions
        ]
        async with self.store.write() as session:
            reserved = await reserve(session, items)
        reservations = {r.execution_id: r for r in reserved if isinstance(r, Reservation)}
        outcomes: dict[int, Outcome] = {}
        if reservations and not no_execute:
            outcomes = await self.submitter.submit(list(reservations), reservations)
        async with self.store.read() as session:
            rows = await get_executions(session, reservations)
        results = [
            self._result(index, item, reserved[index], outcomes, rows)
            for index, item in enumerate(items)
        ]
        return _summarise(results)

    @staticmethod
    def _result(
        index: int,
        item: SubmissionItem,
        reserved: Reservation | Refusal,
        outcomes: dict[int, Outcome],
        rows: dict[int, Execution],
    ) -> BatchSubmitResult:
        def failure(message: str) -> BatchSubmitResult:
            return BatchSubmitResult(
                trade_order_id=item.trade_order_id,
                status="FAILURE",
                message=message,
                execution=None,
                request_index=index,
            )

        if isinstance(reserved, Refusal):
            return failure(reserved.message)
        outcome = outcomes.get(reserved.execution_id)
        if outcome is not None and not outcome.ok:
            return failure(f"Execution submission failed: {outcome.message}")
        row = rows.get(reserved.execution_id)
        if row is None:
            return failure(f"Execution {reserved.execution_id} disappeared during submission")
        return BatchSubmitResult(
            trade_order_id=item.trade_order_id,
            status="SUCCESS",
            message="Trade order submitted successfully",
            execution=execution_response(row),
            request_index=index,
        )


def _summarise(results: Sequence[BatchSubmitResult]) -> BatchSubmitResponse:
    total = len(results)
    successful = sum(1 for r in results if r.status == "SUCCESS")
    if successful == total:
        status, message = "SUCCESS", f"All {total} trade orders submitted successfully"
    elif successful == 0:
        status, message = "FAILURE", f"All {total} trade orders failed to submit"
    else:
        status, message = "PARTIAL", f"{successful} of {total} trade orders submitted successfully"
    return BatchSubmitResponse(
        status=status,
        message=message,
        total_requested=total,
        successful=successful,
        failed=total - successful,
        results=list(results),
    )
