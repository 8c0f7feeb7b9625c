"""``PUT /api/v1/executions/{id}/fill``: the execution service reporting a fill.

Checks in the original's order: unknown execution → 404; stale ``version`` → 409
(the body carries ``currentVersion`` so the caller can re-read and retry);
unknown status abbreviation or ``quantityFilled`` outside 0...``quantity_placed``
→ 400. The update itself is conditional on the version, so two fills racing
for the same version cannot both win. The trade order is not touched.
"""

from __future__ import annotations

import sqlalchemy as sa

from tranche.core.errors import InvalidInput, NotFound, VersionConflict
from tranche.trade.models import Execution
from tranche.trade.repository import TradeStore, get_execution, status_by_abbreviation
from tranche.trade.schemas import FillRequest

__all__ = ["apply_fill"]


def _version_mismatch(expected: int, got: int) -> VersionConflict:
    return VersionConflict(
        f"Version mismatch. Current version is {expected}, request had {got}",
        current_version=expected,
    )


async def apply_fill(store: TradeStore, execution_id: int, body: FillRequest) -> Execution:
    async with store.write() as session:
        execution = await get_execution(session, execution_id)
        if execution is None:
            raise NotFound(f"Execution not found: {execution_id}")
        if execution.version != body.version:
            raise _version_mismatch(execution.version, body.version)
        statuses = await status_by_abbreviation(session)
        status = statuses.get(body.execution_status)
        if status is None:
            valid = ", ".join(statuses)
            message = f"Unknown executionStatus '{body.execution_status}'; valid values: {valid}"
            raise InvalidInput("executionStatus", message, message)
        placed = execution.quantity_placed
        if not 0 <= body.quantity_filled <= placed:
            message = (
                f"quantityFilled {body.quantity_filled} is outside 0..{placed.normalize()} "
                "(the quantity placed)"
            )
            raise InvalidInput("quantityFilled", message, message)
        values: dict[str, object] = {
            "quantity_filled": body.quantity_filled,
            "execution_status_id": status.id,
            "version": Execution.version + 1,
        }
        if body.average_price is not None:
            values["average_price"] = body.average_price
        result = await session.execute(
            sa.update(Execution)
            .where(Execution.id == execution_id, Execution.version == body.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            current = await session.scalar(
                sa.select(Execution.version).where(Execution.id == execution_id)
            )
            raise _version_mismatch(int(current or 0), body.version)
    async with store.read() as session:
        updated = await get_execution(session, execution_id)
    assert updated is not None
    return updated
