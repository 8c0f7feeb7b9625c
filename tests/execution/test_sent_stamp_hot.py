"""Stamping ``sent_timestamp`` after the broker's ack rewrites no index (migration 0003).

The stamp is one more write of every created execution, on the path a batch answer
waits for; as a HOT update it stays on the row's heap page instead of adding a
version to each of the table's indexes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from tests.fixtures.originals import EXECUTION_FLYWAY, EXECUTION_ROWS, build_original, fetch
from tests.fixtures.servers import DatabaseFactory
from tranche.core.migrations import upgrade
from tranche.execution import repository
from tranche.execution.models import execution_table as t

pytestmark = pytest.mark.postgres

ROWS = 200


async def _stamp_counts(url: str) -> tuple[int, int]:
    """Insert ``ROWS`` executions, stamp them; (rows updated, of which HOT)."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                t.insert().returning(t.c.id),
                [
                    {
                        "execution_status": "NEW",
                        "trade_type": "BUY",
                        "destination": "ML",
                        "security_id": f"SEC{i:021d}",
                        "quantity": 10,
                        "limit_price": 25.5,
                        "received_timestamp": datetime(2026, 1, 1, tzinfo=UTC),
                        "version": 1,
                        "trade_service_execution_id": i,
                        "quantity_filled": 0,
                    }
                    for i in range(ROWS)
                ],
            )
            ids = sorted(int(i) for i in result.scalars())
        async with async_sessionmaker(engine)() as session, session.begin():
            assert await repository.mark_sent(session, ids, datetime.now(UTC)) == ROWS
            return await _updates_of_this_transaction(session)
    finally:
        await engine.dispose()


async def _updates_of_this_transaction(session: AsyncSession) -> tuple[int, int]:
    row = (
        await session.execute(
            sa.text(
                "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
                "WHERE relname = 'execution'"
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def test_the_stamp_is_a_hot_update(postgres_factory: DatabaseFactory) -> None:
    url = await postgres_factory("sent_hot")
    await upgrade("execution", url)
    updated, hot = await _stamp_counts(url)
    assert updated == ROWS
    # A row or two may land on a page without room; without the migration none is HOT.
    assert hot >= ROWS * 9 // 10


async def test_the_upgrade_of_the_originals_table_drops_the_index(
    postgres_factory: DatabaseFactory,
) -> None:
    url = await postgres_factory("sent_hot_original")
    await build_original(url, EXECUTION_FLYWAY, EXECUTION_ROWS)
    assert await _index_names(url) >= {"idx_sent_timestamp"}
    await upgrade("execution", url)
    assert "idx_sent_timestamp" not in await _index_names(url)
    options = await fetch(url, "SELECT reloptions FROM pg_class WHERE relname = 'execution'")
    assert options[0]["reloptions"] == ["fillfactor=50"]
    # The original's V4 covering index INCLUDEs sent_timestamp: kept on adoption (as all
    # of V4), it keeps the stamp non-HOT until dropped, as the runbook says.
    assert (await _stamp_counts(url))[1] == 0
    await build_original(url, "DROP INDEX idx_covering_common_fields")
    updated, hot = await _stamp_counts(url)
    assert updated == ROWS
    assert hot >= ROWS * 9 // 10


async def _index_names(url: str) -> set[str]:
    rows = await fetch(url, "SELECT indexname FROM pg_indexes WHERE tablename = 'execution'")
    return {str(r["indexname"]) for r in rows}
