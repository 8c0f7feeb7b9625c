"""The issue's properties of chunk processing, on a real (SQLite) batchdb, via Hypothesis."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import (
    SETTINGS,
    Injector,
    batch_engine_for,
    counting_job,
    table_writer,
    written_values,
)
from tranche.batch import BatchStatus, ChunkStep, Job, JobLauncher, JobRepository, ListReader

PROPERTY = settings(
    max_examples=35, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
_names = itertools.count()


@pytest.fixture(scope="module")
async def prop_launcher(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JobLauncher]:
    path: Path = tmp_path_factory.mktemp("props") / "batch.db"
    engine = await batch_engine_for(f"sqlite+aiosqlite:///{path}")
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    yield launcher
    await launcher.close()
    await engine.dispose()


def engine_of(launcher: JobLauncher) -> AsyncEngine:
    return launcher.repository.engine


@PROPERTY
@given(n=st.integers(0, 60), chunk=st.integers(1, 15))
async def test_commit_count_is_ceil_n_over_chunk_and_each_item_written_once(
    prop_launcher: JobLauncher, n: int, chunk: int
) -> None:
    name = f"p1_{next(_names)}"
    execution = await prop_launcher.run(counting_job(name, n, chunk))
    step = execution.step_executions[0]
    assert execution.status is BatchStatus.COMPLETED
    assert step.commit_count == math.ceil(n / chunk)
    assert step.write_count == step.read_count == n
    assert await written_values(engine_of(prop_launcher), name) == list(range(n))


@PROPERTY
@given(
    data=st.data(),
    n=st.integers(1, 60),
    chunk=st.integers(1, 15),
    phase=st.sampled_from(["process", "write"]),
)
async def test_failure_at_any_item_then_restart_writes_each_item_exactly_once(
    prop_launcher: JobLauncher, data: st.DataObject, n: int, chunk: int, phase: str
) -> None:
    fail_at = data.draw(st.integers(0, n - 1), label="fail_at")
    name = f"p2_{next(_names)}"
    if phase == "process":
        job = counting_job(name, n, chunk, Injector(fail_at={fail_at}))
    else:
        pending = {fail_at}

        def fail_once(v: int) -> bool:
            hit = v in pending
            pending.discard(v)
            return hit

        job = Job(
            name,
            [ChunkStep("s", reader=ListReader(list(range(n))), chunk_size=chunk,
                       writer=table_writer(name, fail_on=fail_once))],
        )  # fmt: skip
    failed = await prop_launcher.run(job)
    assert failed.status is BatchStatus.FAILED
    committed = (fail_at // chunk) * chunk
    assert await written_values(engine_of(prop_launcher), name) == list(range(committed))
    done = await prop_launcher.wait(await prop_launcher.restart(failed.id))
    assert done.status is BatchStatus.COMPLETED
    assert await written_values(engine_of(prop_launcher), name) == list(range(n))


@PROPERTY
@given(data=st.data(), n=st.integers(1, 60), chunk=st.integers(1, 15))
async def test_stop_at_any_point_ends_after_a_whole_chunk_and_restart_finishes(
    prop_launcher: JobLauncher, data: st.DataObject, n: int, chunk: int
) -> None:
    stop_at = data.draw(st.integers(0, n - 1), label="stop_at")
    name = f"p3_{next(_names)}"
    ids: list[int] = []

    async def stop(item: int) -> None:
        if item == stop_at:
            await prop_launcher.stop(ids[0])

    ids.append(await prop_launcher.start(counting_job(name, n, chunk, Injector(on_item=stop))))
    stopped = await prop_launcher.wait(ids[0])
    assert stopped.status is BatchStatus.STOPPED
    whole_chunks = min(n, math.ceil((stop_at + 1) / chunk) * chunk)
    assert await written_values(engine_of(prop_launcher), name) == list(range(whole_chunks))
    done = await prop_launcher.wait(await prop_launcher.restart(stopped.id))
    assert done.status is BatchStatus.COMPLETED
    assert await written_values(engine_of(prop_launcher), name) == list(range(n))
