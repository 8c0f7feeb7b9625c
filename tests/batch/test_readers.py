"""Keyset reader on each database: order, resume from a position, deletes while reading."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.batch.factories import SETTINGS, Boom, table_writer, written, written_values
from tranche.batch import (
    BatchStatus,
    ChunkStep,
    ExecutionContext,
    Job,
    JobLauncher,
    JobRepository,
    KeysetReader,
    ListReader,
    StepContext,
)

md = MetaData()
tokens = Table(
    "test_tokens",
    md,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("expiry", DateTime, nullable=False),
    Column("owner", String(50), nullable=False),
)
BASE = datetime(2025, 1, 1)


async def fill(engine: AsyncEngine, n: int) -> list[tuple[datetime, int]]:
    async with engine.begin() as conn:
        await conn.run_sync(md.create_all)
        # Several rows share an expiry: the key (expiry, id) must still be total.
        rows = [
            {"id": i, "expiry": BASE + timedelta(hours=(i * 7) % 5), "owner": f"u{i}"}
            for i in range(1, n + 1)
        ]
        await conn.execute(insert(tokens), rows)
    return sorted((r["expiry"], r["id"]) for r in rows)


def reader(engine: AsyncEngine, page: int = 4) -> KeysetReader[tuple[datetime, int]]:
    return KeysetReader(
        engine,
        select(tokens.c.id, tokens.c.expiry).where(tokens.c.owner != "nobody"),
        key=[tokens.c.expiry, tokens.c.id],
        page_size=page,
        map_row=lambda r: (r["expiry"], r["id"]),
    )


async def test_keyset_reader_resumes_from_its_position(any_engine: AsyncEngine) -> None:
    expected = await fill(any_engine, 25)
    first = reader(any_engine)
    await first.open(None)
    got = [await first.read() for _ in range(10)]
    position = first.position()
    await first.close()
    # A restart in another process: the position went through the step context (JSON).
    saved = ExecutionContext({"pos": position}).to_json()
    second = reader(any_engine, page=3)
    await second.open(ExecutionContext.from_json(saved)["pos"])
    while (item := await second.read()) is not None:
        got.append(item)
    assert got == expected
    assert second.position() == [expected[-1][0], expected[-1][1]]


async def test_rows_deleted_while_reading_do_not_shift_pages(engine: AsyncEngine) -> None:
    expected = await fill(engine, 17)
    r = reader(engine, page=5)
    await r.open(None)
    seen = []
    while (item := await r.read()) is not None:
        seen.append(item)
        async with engine.begin() as conn:
            await conn.execute(delete(tokens).where(tokens.c.id == item[1]))
    assert seen == expected


async def test_keyset_reader_in_a_restarted_job(engine: AsyncEngine) -> None:
    await fill(engine, 12)
    crash = {"at": 7}

    async def copy(items: list[tuple[datetime, int]], ctx: StepContext) -> None:
        session = await ctx.session()
        await session.execute(insert(written), [{"job": "keysetJob", "value": i} for _, i in items])
        if crash["at"] in [i for _, i in items]:
            crash["at"] = -1
            raise Boom("crash mid-way")

    job = Job(
        "keysetJob",
        [ChunkStep("copyStep", reader=lambda ctx: reader(engine), writer=copy, chunk_size=3)],
    )
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    failed = await launcher.run(job)
    assert failed.status is BatchStatus.FAILED
    done = await launcher.wait(await launcher.restart(failed.id))
    assert done.status is BatchStatus.COMPLETED
    ids = await written_values(engine, "keysetJob")
    assert sorted(ids) == list(range(1, 13)) and len(ids) == 12
    position = done.step_executions[0].context["batch.reader.position"]
    assert isinstance(position[0], datetime) and position[1] in range(1, 13)


async def test_reader_misuse_is_reported(engine: AsyncEngine) -> None:
    await fill(engine, 3)
    bad = KeysetReader(engine, select(tokens.c.owner), key=[tokens.c.id])
    await bad.open(None)
    with pytest.raises(ValueError, match="must select its key columns"):
        await bad.read()
    with pytest.raises(ValueError, match="list of 1 key values"):
        await bad.open([5, 6])
    lr = ListReader(["a", "b"])
    await lr.open(1)
    assert (await lr.read(), await lr.read(), lr.position()) == ("b", None, 2)


async def test_a_single_key_position_saved_as_a_bare_value_resumes_after_it(
    engine: AsyncEngine,
) -> None:
    """Positions saved by the readers this one replaced (an id, not a list) still resume."""
    await fill(engine, 5)
    ids = KeysetReader(engine, select(tokens.c.id), key=[tokens.c.id], map_row=lambda r: r["id"])
    await ids.open(3)
    assert [await ids.read(), await ids.read(), await ids.read()] == [4, 5, None]
    assert ids.position() == [5]


async def test_map_page_completes_pages_and_drops_rows_without_losing_the_position(
    engine: AsyncEngine,
) -> None:
    """A page mapper sees whole pages; rows it drops are skipped; a failed page is re-read."""
    await fill(engine, 10)
    pages: list[list[int]] = []
    failures = [RuntimeError("lookup down")]

    async def odd_only(rows: Sequence[RowMapping]) -> list[int | None]:
        if failures:
            raise failures.pop()
        pages.append([r["id"] for r in rows])
        return [r["id"] if r["id"] % 2 else None for r in rows]

    odd = KeysetReader(engine, select(tokens.c.id), key=[tokens.c.id], page_size=4,
                       map_page=odd_only)  # fmt: skip
    await odd.open(None)
    with pytest.raises(RuntimeError):
        await odd.read()
    got = [await odd.read() for _ in range(6)]
    assert got == [1, 3, 5, 7, 9, None]
    assert pages == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
    assert odd.position() == [9]


async def test_buffered_items_come_out_as_reads_would_give_them(engine: AsyncEngine) -> None:
    """take_buffered hands out the fetched page's rest, as read() would, and never fetches."""
    await fill(engine, 11)
    taking, reading = reader(engine), reader(engine)
    await taking.open(None)
    await reading.open(None)
    assert taking.take_buffered(3) == []
    got = [await taking.read(), *taking.take_buffered(10)]
    assert got == [await reading.read() for _ in range(4)]
    assert taking.position() == reading.position()
    assert taking.take_buffered(2) == []
    rest = [await taking.read(), *taking.take_buffered(2)]
    assert rest == [await reading.read() for _ in range(3)]
    assert taking.position() == reading.position()


class CountingReader(ListReader[int]):
    def __init__(self, items: list[int]) -> None:
        super().__init__(items)
        self.reads = self.takes = 0

    async def read(self) -> int | None:
        self.reads += 1
        return await super().read()

    def take_buffered(self, n: int) -> list[int]:
        self.takes += 1
        return super().take_buffered(n)


async def test_a_chunk_takes_buffered_items_at_once_and_reads_only_to_fetch(
    engine: AsyncEngine,
) -> None:
    source = CountingReader(list(range(7)))
    job = Job(
        "bufferedJob",
        [ChunkStep("copyStep", reader=source, writer=table_writer("bufferedJob"), chunk_size=3)],
    )
    launcher = JobLauncher(JobRepository(engine), settings=SETTINGS)
    done = await launcher.run(job)
    await launcher.close()
    assert done.status is BatchStatus.COMPLETED
    assert await written_values(engine, "bufferedJob") == list(range(7))
    step = done.step_executions[0]
    assert (step.read_count, step.commit_count) == (7, 3)
    assert step.context["batch.reader.position"] == 7
    # Everything was in memory: read() ran once, to learn the list had ended.
    assert (source.reads, source.takes) == (1, 4)
