"""``ids_in``: the id lists of the jobs' built-once statements, rendered into the SQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tranche.doctoral.jobs.duree_reader import ids_in

META = sa.MetaData()
ROWS = sa.Table("rows", META, sa.Column("id", sa.Integer, primary_key=True))
QUERY = sa.select(ROWS.c.id).where(ids_in(ROWS.c.id)).order_by(ROWS.c.id)


@pytest.fixture
def engine() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(ROWS), [{"id": i} for i in range(1, 6)])
    return engine


def test_the_same_statement_selects_each_list_it_is_given(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        assert conn.execute(QUERY, {"ids": [2, 4, 9]}).scalars().all() == [2, 4]
        assert conn.execute(QUERY, {"ids": [5]}).scalars().all() == [5]
        assert conn.execute(QUERY, {"ids": []}).scalars().all() == []  # IN (NULL)


def test_only_integers_reach_the_sql(engine: sa.Engine) -> None:
    with engine.connect() as conn, pytest.raises(sa.exc.StatementError):
        conn.execute(QUERY, {"ids": ["1) OR (1=1"]})
