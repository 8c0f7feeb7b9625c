"""``kill -9`` in the middle of archiveJob, then a new run: nothing is lost, everything archived."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.doctoral.archive.data import OLD, RUN, Scene, assert_nothing_lost, scene
from tests.doctoral.archive.killed_run import POINTS
from tests.doctoral.harness import Databases
from tranche.batch import BatchSettings, BatchStatus, JobExecutionAlreadyRunningError
from tranche.batch.model import JobExecution
from tranche.doctoral.archive.models import defense_archive, inscription_archive

ROOT = Path(__file__).parents[3]
#: The dead process's lock becomes stale quickly, so the next run can take it over.
FAST_TAKEOVER = BatchSettings(
    scheduler_enabled=False, lock_heartbeat_seconds=0.1, lock_stale_after_seconds=0.5
)


async def _run_until_lock_is_free(world: Scene, timeout_s: float = 30.0) -> JobExecution:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            return await world.run(RUN + timedelta(minutes=10))
        except JobExecutionAlreadyRunningError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("point", list(POINTS))
async def test_kill_9_then_rerun_loses_nothing(
    sqlite_databases: Databases, tmp_path: Path, point: str
) -> None:
    async with scene(sqlite_databases, tmp_path, archive_chunk_size=2) as world:
        world.pv.mkdir(parents=True, exist_ok=True)
        enrollments = {await world.enrollment("VALIDE", validated=OLD) for _ in range(3)}
        defenses = {await world.defense("COMPLETED", OLD)}
        before = dict(world.files)
    args = {"urls": sqlite_databases.urls, "root": str(tmp_path), "point": point}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.doctoral.archive.killed_run",
        json.dumps(args),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await child.communicate()
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]

    async with scene(sqlite_databases, tmp_path, batch=FAST_TAKEOVER) as world:
        await assert_nothing_lost(world, before)
        assert not list(world.archives.rglob("*.tmp")) or point == "after_rename_before_rows"
        again = await _run_until_lock_is_free(world)
        assert again.status is BatchStatus.COMPLETED, again.exit_status
        assert await world.ids(inscription_archive) == enrollments
        assert await world.ids(defense_archive) == defenses
        assert await assert_nothing_lost(world, before) == len(before)
