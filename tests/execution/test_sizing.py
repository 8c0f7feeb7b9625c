"""The chunk-size optimizer's rules and the insert gate (no database)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fixtures.waiting import eventually
from tranche.execution.sizing import (
    ChunkSizer,
    InsertGate,
    PoolLoad,
    default_concurrency,
    split,
)

QUIET = PoolLoad(in_use=1, capacity=20)


def sizer(**kw: object) -> ChunkSizer:
    args: dict[str, object] = {
        "base": 500,
        "minimum": 50,
        "maximum": 2000,
        "enabled": True,
        "target_s": 0.5,
    }
    args.update(kw)
    return ChunkSizer(**args)  # type: ignore[arg-type]


def test_disabled_keeps_the_configured_size() -> None:
    s = sizer(enabled=False, base=700)
    assert s.observe(700, 30.0, PoolLoad(20, 20, 5)) == 700
    assert s.size() == 700


def test_quiet_pool_and_fast_chunks_grow_by_a_fifth() -> None:
    s = sizer()
    assert s.observe(500, 0.05, QUIET) == 600
    assert s.last_reason == "headroom"


def test_critical_pool_shrinks_hard_even_when_fast() -> None:
    s = sizer()
    assert s.observe(500, 0.01, PoolLoad(in_use=19, capacity=20)) == 300
    assert s.last_reason == "pool critical"
    s = sizer()
    assert s.observe(500, 0.01, PoolLoad(in_use=2, capacity=20, waiting=3)) == 300


def test_busy_pool_shrinks_gently() -> None:
    s = sizer()
    assert s.observe(500, 0.01, PoolLoad(in_use=16, capacity=20)) == 400
    assert s.last_reason == "pool busy"


def test_slow_chunks_shrink_to_fit_the_target_but_at_most_halve() -> None:
    s = sizer()
    # 1 ms a row: 500 rows take 0.5 s, exactly the target -> steady.
    assert s.observe(500, 0.5, PoolLoad(10, 20)) == 500
    assert s.last_reason == "steady"
    s = sizer()
    # 2 ms a row: a 500-row chunk would take 1 s; 250 rows fit in 0.5 s.
    assert s.observe(500, 1.0, QUIET) == 250
    assert s.last_reason == "slow chunks"
    s = sizer()
    # 10 ms a row would mean 50 rows, but one step never more than halves.
    assert s.observe(500, 5.0, QUIET) == 250


def test_one_slow_chunk_is_averaged_not_trusted_alone() -> None:
    s = sizer()
    for _ in range(3):
        s.observe(500, 0.1, PoolLoad(12, 20))  # 0.2 ms a row, pool moderately busy: steady
    assert s.size() == 500
    s.observe(500, 1.0, PoolLoad(12, 20))  # one 2 ms/row chunk: average 0.74 ms/row
    assert s.size() == 500


def test_bounds_hold() -> None:
    s = sizer(base=1900)
    for _ in range(10):
        s.observe(s.size(), 0.001, QUIET)
    assert s.size() == 2000
    for _ in range(20):
        s.observe(s.size(), 0.001, PoolLoad(20, 20))
    assert s.size() == 50


def test_invalid_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="minimum"):
        sizer(minimum=100, maximum=10)


@given(
    st.lists(
        st.tuples(
            st.integers(1, 5000),
            st.floats(0, 30, allow_nan=False),
            st.integers(0, 40),
            st.integers(1, 40),
            st.integers(0, 5),
        ),
        max_size=50,
    )
)
def test_size_always_within_bounds(observations: list[tuple[int, float, int, int, int]]) -> None:
    s = sizer()
    for rows, secs, used, cap, waiting in observations:
        assert 50 <= s.observe(rows, secs, PoolLoad(used, cap, waiting)) <= 2000


@given(st.integers(0, 10_000), st.integers(1, 3000))
def test_split_covers_every_index_once(total: int, size: int) -> None:
    parts = split(total, size)
    assert [i for r in parts for i in r] == list(range(total))
    assert all(1 <= len(r) <= size for r in parts)


def test_concurrency_defaults() -> None:
    assert default_concurrency(10, 10, "postgresql") == 2  # measured: more starve the relay
    assert default_concurrency(2, 1, "postgresql") == 1
    assert default_concurrency(1, 0, "postgresql") == 1
    assert default_concurrency(10, 10, "sqlite") == 1


async def test_gate_bounds_concurrency_and_counts_waiters() -> None:
    gate = InsertGate(2)
    running = 0
    peak = 0
    waiting_seen = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak, waiting_seen
        async with gate:
            running += 1
            peak = max(peak, running)
            waiting_seen = max(waiting_seen, gate.waiting)
            await release.wait()
            running -= 1

    workers = asyncio.gather(*(work() for _ in range(6)))
    # Two inside, four queued: the gate holds them until the two inside finish.
    await eventually(lambda: (running, gate.waiting), 5, "a full gate", until=(2, 4))
    release.set()
    await workers
    assert peak == 2
    assert waiting_seen >= 1
    assert gate.waiting == 0
