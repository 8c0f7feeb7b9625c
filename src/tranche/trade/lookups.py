"""Creating, changing and deleting the lookup rows (blotters, trade types, execution
statuses, destinations), version-checked as trade orders are.

A lookup still referenced by a trade order or an execution is not deleted (409):
the original's foreign keys would refuse (``RESTRICT``) or silently null the
reference (``SET NULL``), and neither is what an operator deleting a code means.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tranche.core.errors import Conflict, InvalidInput, NotFound, VersionConflict
from tranche.trade.models import Execution, TradeOrder
from tranche.trade.repository import TradeStore

__all__ = ["LOOKUP_REFERENCES", "create_lookup", "delete_lookup", "update_lookup"]

#: The columns that point at each lookup table.
LOOKUP_REFERENCES: dict[str, list[Any]] = {
    "blotter": [TradeOrder.blotter_id, Execution.blotter_id],
    "trade_type": [Execution.trade_type_id],
    "execution_status": [Execution.execution_status_id],
    "destination": [Execution.destination_id],
}


def _fits(model: type[Any], values: dict[str, str]) -> None:
    """The wire model allows the widest column; trade_type's abbreviation is narrower."""
    for name, value in values.items():
        length = getattr(model.__table__.c[name].type, "length", None)
        if length is not None and len(value) > length:
            raise InvalidInput(name, f"must be at most {length} characters")


async def create_lookup(store: TradeStore, model: type[Any], values: dict[str, str]) -> Any:
    _fits(model, values)
    async with store.write() as session:
        row = model(**values, version=1)
        session.add(row)
        await session.flush()
        return row


async def _current(session: Any, model: type[Any], label: str, id_: int, version: int) -> Any:
    row = await session.get(model, id_, with_for_update=True, populate_existing=True)
    if row is None:
        raise NotFound(f"{label} not found: {id_}")
    if row.version != version:
        raise VersionConflict(
            f"Version mismatch for {label.lower()} {id_}: expected {row.version}, got {version}",
            current_version=row.version,
        )
    return row


async def update_lookup(
    store: TradeStore, model: type[Any], label: str, id_: int, values: dict[str, str], version: int
) -> Any:
    _fits(model, values)
    async with store.write() as session:
        row = await _current(session, model, label, id_, version)
        for name, value in values.items():
            setattr(row, name, value)
        row.version += 1
        await session.flush()
        return row


async def delete_lookup(
    store: TradeStore, model: type[Any], label: str, id_: int, version: int
) -> None:
    async with store.write() as session:
        row = await _current(session, model, label, id_, version)
        for column in LOOKUP_REFERENCES[model.__tablename__]:
            used = await session.scalar(sa.select(column).where(column == id_).limit(1))
            if used is not None:
                raise Conflict(f"{label} {id_} is in use and cannot be deleted")
        await session.delete(row)
