"""A failure between any two of archiveJob's steps loses nothing, and a re-run finishes the work.

Each failure is injected at one point of the order of operations (archive
written → verified → renamed → rows inserted → committed → originals removed
→ removal recorded). After the failed run every original file is either on
disk unchanged or inside a verified archive its committed row names; after a
re-run everything is archived exactly once and every original is gone.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.doctoral.archive.data import OLD, RUN, Scene, assert_nothing_lost, scene
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.doctoral.archive import format as archive_format
from tranche.doctoral.archive import writer as archive_writer
from tranche.doctoral.archive.models import defense_archive, inscription_archive


class Crash(Exception):
    """The injected failure."""


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise Crash("injected")


def _after(original: Callable[..., Any]) -> Callable[..., Any]:
    def run_then_crash(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise Crash("injected after the real work")

    return run_then_crash


async def _write_then_crash(self: Any, records: Any, ctx: Any) -> None:
    await ORIGINAL_WRITE(self, records, ctx)
    raise Crash("injected after the rows, before the commit")


ORIGINAL_WRITE = archive_writer.ArchiveWriter.write

#: Injection point → (object, attribute, replacement).
POINTS: dict[str, tuple[Any, str, Any]] = {
    "before_rename": (archive_format, "verify", _raise),
    "after_rename_before_rows": (archive_format, "_fsync_dir", _raise),
    "after_rows_before_commit": (archive_writer.ArchiveWriter, "write", _write_then_crash),
    "after_commit_before_removal": (archive_writer, "_remove_files", _raise),
    "after_removal_before_recorded": (
        archive_writer,
        "_remove_files",
        _after(archive_writer._remove_files),
    ),
}


async def _records(world: Scene) -> tuple[set[int], set[int]]:
    world.pv.mkdir(parents=True, exist_ok=True)
    enrollments = {await world.enrollment("VALIDE", validated=OLD) for _ in range(3)}
    enrollments.add(await world.enrollment("REJETE", rejected=OLD, blob=b"pdf"))
    defenses = {await world.defense("COMPLETED", OLD) for _ in range(2)}
    return enrollments, defenses


@pytest.mark.parametrize("point", list(POINTS))
async def test_a_failure_at_each_point_loses_nothing_and_a_rerun_completes(
    fresh: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    # Chunks of 2, so the failure can hit after an earlier chunk committed.
    async with scene(fresh, tmp_path, archive_chunk_size=2) as world:
        enrollments, defenses = await _records(world)
        before = dict(world.files)
        target, name, replacement = POINTS[point]
        with monkeypatch.context() as patch:
            patch.setattr(target, name, replacement)
            first = await world.run()
        await assert_nothing_lost(world, before)
        assert not list(world.archives.rglob("*.tmp"))
        if point.startswith(("after_commit", "after_removal")):
            # Removal runs after the commit: the run completes, the removal is redone.
            assert first.status is BatchStatus.COMPLETED
        else:
            assert first.status is BatchStatus.FAILED
            assert "injected" in (first.exit_status.exit_description or "")
            # A rolled-back chunk leaves no archive without a row.
            archived = await world.ids(inscription_archive)
            assert len(list(world.archives.rglob("*.zip"))) == len(archived)

        second = await world.run(RUN + timedelta(minutes=10))
        assert second.status is BatchStatus.COMPLETED, second.exit_status
        assert await world.ids(inscription_archive) == enrollments
        assert await world.ids(defense_archive) == defenses
        assert await assert_nothing_lost(world, before) == len(before)
        async with world.runtime.sources.batchdb.sessions() as s:
            pending = (
                await s.execute(
                    sa.select(sa.func.count())
                    .select_from(inscription_archive)
                    .where(inscription_archive.c.originals_removed_at.is_(None))
                )
            ).scalar_one()
        assert pending == 0
        assert len(list(world.archives.rglob("*.zip"))) == len(enrollments) + len(defenses)


async def test_disk_full_fails_clearly_and_leaves_nothing_half_written(
    fresh: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with scene(fresh, tmp_path) as world:
        await _records(world)
        before = dict(world.files)

        def full(*_args: Any) -> Any:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(archive_format, "_add", full)
        execution = await world.run()
        assert execution.status is BatchStatus.FAILED
        assert "no space left on the device" in (execution.exit_status.exit_description or "")
        assert await world.ids(inscription_archive) == set()
        assert [p for p in world.archives.rglob("*") if p.is_file()] == []
        assert await assert_nothing_lost(world, before) == 0


async def test_a_read_only_archive_directory_fails_before_touching_anything(
    fresh: Databases, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        # root writes through permission bits; /sys refuses new entries even to root.
        unwritable = Path("/sys/tranche-archives-test")
    else:
        unwritable = tmp_path / "read-only"
        unwritable.mkdir()
        unwritable.chmod(0o555)
    async with scene(fresh, tmp_path, archives_dir=unwritable) as world:
        await _records(world)
        before = dict(world.files)
        execution = await world.run()
        assert execution.status is BatchStatus.FAILED
        message = execution.exit_status.exit_description or ""
        assert f"archive directory {unwritable} is not writable" in message
        assert await world.ids(inscription_archive) == set()
        assert await assert_nothing_lost(world, before) == 0
