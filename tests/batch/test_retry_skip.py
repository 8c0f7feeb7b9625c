"""Retry of transient database errors and skip of bad items, per step, as properties.

Errors are shaped as the drivers raise them (SQLAlchemy ``OperationalError`` around a
driver error carrying MariaDB's number or PostgreSQL's SQLSTATE), so the classifier
is what decides, not an exception class made for the test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, batch_engine_for, written, written_values
from tranche.batch import (
    BatchStatus,
    ChunkStep,
    Job,
    JobLauncher,
    JobRepository,
    ListReader,
    RetryPolicy,
    SkipPolicy,
    StepContext,
)
from tranche.batch.transient import MYSQL_TRANSIENT, POSTGRES_TRANSIENT, is_transient_db_error

PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_names = itertools.count()


class MysqlError(Exception):
    """What asyncmy raises: ``args = (errno, message)``."""


class PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"error {sqlstate}")
        self.sqlstate = sqlstate


def mysql(code: int, message: str = "driver error") -> OperationalError:
    return OperationalError("UPDATE t SET x = 1", {}, MysqlError(code, message))


def deadlock() -> OperationalError:
    return mysql(1213, "Deadlock found when trying to get lock; try restarting transaction")


@given(st.sampled_from(sorted(MYSQL_TRANSIENT)))
def test_mariadb_transient_codes_are_retried(code: int) -> None:
    assert is_transient_db_error(mysql(code))


@given(st.integers(1, 5000).filter(lambda c: c not in MYSQL_TRANSIENT))
def test_other_mariadb_codes_are_not(code: int) -> None:
    assert not is_transient_db_error(mysql(code, "Duplicate entry"))


@given(st.sampled_from([*sorted(POSTGRES_TRANSIENT), "08006", "08001"]))
def test_postgres_transient_states_are_retried(state: str) -> None:
    assert is_transient_db_error(OperationalError("x", {}, PgError(state)))


def test_sqlite_busy_and_plain_errors() -> None:
    locked = OperationalError("x", {}, Exception("database is locked"))
    assert is_transient_db_error(locked)
    assert not is_transient_db_error(OperationalError("x", {}, Exception("no such table: t")))
    assert not is_transient_db_error(IntegrityError("x", {}, MysqlError(1062, "Duplicate")))
    assert not is_transient_db_error(ValueError("deadlock"))


@pytest.fixture(scope="module")
async def prop_launcher(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JobLauncher]:
    path: Path = tmp_path_factory.mktemp("retry") / "batch.db"
    engine = await batch_engine_for(f"sqlite+aiosqlite:///{path}")
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    yield launcher
    await launcher.close()
    await engine.dispose()


def engine_of(launcher: JobLauncher) -> AsyncEngine:
    return launcher.repository.engine


def step(
    name: str,
    n: int,
    chunk: int,
    transient: dict[int, int],
    bad: set[int],
    *,
    attempts: int,
    limit: int,
) -> ChunkStep[int, int]:
    """A write transaction starting at item ``i`` meets a deadlock ``transient[i]`` times
    (the database's view: a transaction fails, not an item); a ``bad`` item always
    violates a constraint (skippable)."""
    left = dict(transient)

    async def write(items: Sequence[int], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": name, "value": v} for v in items])
        if left.get(items[0], 0) > 0:
            left[items[0]] -= 1
            raise deadlock()
        for v in items:
            if v in bad:
                raise IntegrityError("INSERT", {}, MysqlError(1062, f"Duplicate entry '{v}'"))

    return ChunkStep(
        "s",
        reader=ListReader(list(range(n))),
        writer=write,
        chunk_size=chunk,
        retry=RetryPolicy(
            attempts=attempts, initial_backoff=0, max_backoff=0, retry_if=is_transient_db_error
        ),
        skip=SkipPolicy(skip_on=(IntegrityError,), limit=limit),
    )


@PROPERTY
@given(
    data=st.data(),
    n=st.integers(1, 40),
    chunk=st.integers(1, 10),
    limit=st.integers(0, 6),
)
async def test_deadlocks_are_retried_and_bad_items_skipped_up_to_the_limit(
    prop_launcher: JobLauncher, data: st.DataObject, n: int, chunk: int, limit: int
) -> None:
    attempts = 4
    items = list(range(n))
    # Each transaction fails transiently fewer times than the attempts allow: retries win.
    transient = data.draw(
        st.dictionaries(st.sampled_from(items), st.integers(1, attempts - 1), max_size=4)
    )
    bad = data.draw(st.sets(st.sampled_from(items), max_size=limit + 2))
    name = f"rs_{next(_names)}"
    execution = await prop_launcher.run(
        Job(name, [step(name, n, chunk, transient, bad, attempts=attempts, limit=limit)])
    )
    s = execution.step_executions[0]
    if len(bad) <= limit:
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        assert await written_values(engine_of(prop_launcher), name) == [
            i for i in items if i not in bad
        ]
        assert s.write_skip_count == len(bad) and s.write_count == n - len(bad)
        assert s.read_count == n
        totals = execution.totals()
        items_failed = sum(totals[k] for k in ("read_skip_count", "process_skip_count"))
        assert items_failed + totals["write_skip_count"] == len(bad)
        assert s.rollback_count >= (1 if bad else 0)
    else:
        assert execution.status is BatchStatus.FAILED
        assert f"exceeded its skip limit of {limit}" in execution.exit_status.exit_description
        # Whatever committed before the failing chunk is whole: no bad item, no duplicate.
        kept = await written_values(engine_of(prop_launcher), name)
        assert len(kept) == len(set(kept)) and not set(kept) & bad


@PROPERTY
@given(n=st.integers(1, 20), chunk=st.integers(1, 8), attempts=st.integers(1, 4))
async def test_a_deadlock_that_persists_fails_the_step_after_its_attempts(
    prop_launcher: JobLauncher, n: int, chunk: int, attempts: int
) -> None:
    name = f"rp_{next(_names)}"
    forever = {0: 10_000}
    execution = await prop_launcher.run(
        Job(name, [step(name, n, chunk, forever, set(), attempts=attempts, limit=5)])
    )
    assert execution.status is BatchStatus.FAILED
    assert "Deadlock found" in execution.exit_status.exit_description
    assert await written_values(engine_of(prop_launcher), name) == []
    assert execution.step_executions[0].rollback_count == attempts


async def test_a_transient_read_error_is_retried_at_the_same_position(
    prop_launcher: JobLauncher,
) -> None:
    class LosesConnectionOnce(ListReader[int]):
        failed = False

        async def read(self) -> int | None:
            if self.position() == 3 and not self.failed:
                self.failed = True
                raise mysql(2013, "Lost connection to server during query")
            return await super().read()

    async def write(items: Sequence[int], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": "readRetry", "value": v} for v in items])

    job = Job(
        "readRetry",
        [
            ChunkStep(
                "s",
                reader=LosesConnectionOnce(list(range(6))),
                writer=write,
                chunk_size=2,
                retry=RetryPolicy(initial_backoff=0, max_backoff=0, retry_if=is_transient_db_error),
            )
        ],
    )
    execution = await prop_launcher.run(job)
    assert execution.status is BatchStatus.COMPLETED
    assert await written_values(engine_of(prop_launcher), "readRetry") == list(range(6))
