"""The ``copy`` method's binary rows store exactly what the values say (PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tranche.core.db import Database
from tranche.core.migrations import upgrade
from tranche.core.settings import PoolSettings
from tranche.execution.bulk_insert import NewRow, insert_rows
from tranche.execution.models import execution_table as t

pytestmark = [pytest.mark.postgres]

POOL = PoolSettings(pool_size=2, max_overflow=0, pool_timeout=10, pool_recycle=3600)

# What validation lets through: any text without NUL or lone surrogates, COPY's own
# delimiters and escapes (tab, newline, carriage return, backslash, "\N") included.
_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20
) | st.sampled_from(["\\N", "a\tb", "a\nb\r", "\\", "\\\\t", "ML"])
# numeric(18,8): up to 8 places below 10^10, at any exponent (the display scale is sent).
_amount = (
    st.integers(0, 8).flatmap(
        lambda places: st.integers(-(10 ** (10 + places)) + 1, 10 ** (10 + places) - 1).map(
            lambda digits: Decimal(digits).scaleb(-places)
        )
    )
    | st.decimals(
        min_value=Decimal("-9999999999.99999999"),
        max_value=Decimal("9999999999.99999999"),
        places=8,
        allow_nan=False,
    )
    | st.sampled_from(
        [
            Decimal(v)
            for v in ("1.5", "1.50", "1E+3", "12E+5", "0E-8", "0", "-0", "-0.00000001", "1E-8")
        ]
    )
)
_instant = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))]),
)
_rows = st.builds(
    NewRow,
    execution_status=_text,
    trade_type=_text.map(lambda s: s[:10]),
    destination=_text,
    security_id=_text.map(lambda s: s.rstrip(" ")),
    quantity=_amount,
    limit_price=st.none() | _amount,
    received_timestamp=_instant,
    trade_service_execution_id=st.none() | st.integers(0, 2**31 - 1),
    version=st.integers(-(2**31), 2**31 - 1),
    quantity_filled=_amount,
    average_price=st.none() | _amount,
    sent_timestamp=st.none() | _instant,
)


@pytest.fixture(scope="module")
async def db(postgres_url: str) -> AsyncIterator[Database]:
    await upgrade("execution", postgres_url)
    database = Database.open("execution", postgres_url, POOL)
    try:
        yield database
    finally:
        await database.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(_rows, min_size=1, max_size=30))
async def test_copied_rows_read_back_as_given(db: Database, rows: list[NewRow]) -> None:
    async with db.transaction() as session:
        ids = await insert_rows(session, rows, "copy")
    async with db.sessions() as session:
        stored = {
            r["id"]: r
            for r in (await session.execute(sa.select(t).where(t.c.id.in_(ids)))).mappings()
        }
    for row_id, row in zip(ids, rows, strict=True):
        got = stored[row_id]
        for column, value in row._asdict().items():
            assert got[column] == value, (column, value, got[column])
