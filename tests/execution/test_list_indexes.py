"""``GET /api/v1/executions`` filters are served by indexes (they ignore case)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.fixtures.servers import DatabaseFactory
from tranche.core.migrations import upgrade
from tranche.execution.models import execution_table as t
from tranche.execution.repository import ListQuery

FILTERS = {
    "statuses": ("idx_upper_execution_status", ListQuery(statuses=["new", "Part"])),
    "trade_types": ("idx_upper_trade_type", ListQuery(trade_types=["buy"])),
    "destinations": ("idx_upper_destination", ListQuery(destinations=["ml", "RBC"])),
}


def _filtered(query: ListQuery, engine: AsyncEngine) -> str:
    """The page's count of matching rows (the page itself may walk the id order instead)."""
    stmt = sa.select(sa.func.count()).select_from(t).where(*query.where())
    return str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))


async def _fill(engine: AsyncEngine) -> None:
    rows = [
        {
            "execution_status": ["NEW", "PART", "FULL", "SENT"][i % 4],
            "trade_type": ["BUY", "SELL"][i % 2],
            "destination": ["ML", "RBC", "JPM", "IB", "INST"][i % 5],
            "security_id": f"SEC{i % 97:021d}",
            "quantity": 10,
            "received_timestamp": datetime(2026, 1, 1, tzinfo=UTC),
            "version": 1,
            "quantity_filled": 0,
        }
        for i in range(2000)
    ]
    async with engine.begin() as conn:
        await conn.execute(t.insert(), rows)


@pytest.fixture
async def pg_engine(postgres_factory: DatabaseFactory) -> AsyncIterator[AsyncEngine]:
    url = await postgres_factory("indexes")
    await upgrade("execution", url)
    engine = create_async_engine(url)
    try:
        await _fill(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE execution"))
        yield engine
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("name", FILTERS)
async def test_postgres_plans_an_index_condition(pg_engine: AsyncEngine, name: str) -> None:
    index, query = FILTERS[name]
    async with pg_engine.connect() as conn:
        # The table is small: without this the planner may rightly prefer a scan. With
        # it, a filter no index can serve still shows "Seq Scan" (the test can fail).
        await conn.execute(sa.text("SET enable_seqscan = off"))
        plan = "\n".join(
            row[0] for row in await conn.execute(sa.text("EXPLAIN " + _filtered(query, pg_engine)))
        )
    assert "Seq Scan" not in plan, plan
    assert index in plan, plan
    assert "Index Cond: (upper((" in plan, plan
    # Same answers as a case-insensitive comparison row by row.
    async with pg_engine.connect() as conn:
        got = (await conn.execute(sa.select(sa.func.count()).where(*query.where()))).scalar()
    assert got and got > 0


async def test_sqlite_uses_the_same_indexes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'indexes.db'}"
    await upgrade("execution", url)
    engine = create_async_engine(url)
    try:
        await _fill(engine)
        for index, query in FILTERS.values():
            async with engine.connect() as conn:
                plan = " ".join(
                    str(row[-1])
                    for row in await conn.execute(
                        sa.text("EXPLAIN QUERY PLAN " + _filtered(query, engine))
                    )
                )
            assert f"USING INDEX {index}" in plan, plan
    finally:
        await engine.dispose()
