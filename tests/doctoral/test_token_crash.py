"""tokenCleanupJob killed between userdb's commit and batchdb's: the restart's counts are exact.

A real subprocess runs the real tokenCleanupJob (chunks of 5) and freezes right after
userdb committed its second chunk's DELETE, before batchdb commits that chunk's
checkpoint; it is then killed with SIGKILL. Those five tokens are gone, but no checkpoint
counted them, and the restarted run never reads them again. The restart must still
report every deleted token: the counts equal the tokens that really went.

The tests here run with ``token_cleanup_one_transaction`` off (two commits, as with
userdb on another server); ``test_token_one_transaction`` kills the same worker with it on.

``python -m tests.doctoral.test_token_crash SETTINGS_JSON READY_FILE`` is the worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from tests.doctoral.factories import SECRET
from tests.doctoral.harness import FIELDS, Databases, Running
from tests.doctoral.test_crash_recovery import wait_for_file
from tests.doctoral.test_token_cleanup import RUN, _ids, _tokens
from tranche.batch import BatchStatus
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import userdb as U

ROOT = Path(__file__).parents[2]
CHUNK = 5


async def worker(settings_json: str, ready: Path) -> None:
    settings = DoctoralSettings(**json.loads(settings_json))
    runtime = Runtime.build(settings)
    userdb_commits = 0
    joined_deletes = 0

    def on_userdb_commit(_conn: Any) -> None:
        nonlocal userdb_commits
        userdb_commits += 1

    def on_batchdb_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        nonlocal joined_deletes
        if statement.startswith("DELETE") and "refresh_token" in statement:
            joined_deletes += 1

    def on_batchdb_commit(_conn: Any) -> None:
        # Two commits: userdb's first, then batchdb's, so this is chunk 2's checkpoint
        # commit with chunk 2's DELETE already committed. One transaction: chunk 2's DELETE
        # ran on batchdb's connection and this commit (or an earlier one, the heartbeat's)
        # is not yet sent. Either way, freeze the whole process right here.
        chunks = joined_deletes if settings.token_cleanup_one_transaction else userdb_commits
        if chunks == 2:
            ready.write_text("frozen")
            time.sleep(3600)

    batchdb = runtime.sources.batchdb.engine.sync_engine
    event.listen(runtime.sources.userdb.engine.sync_engine, "commit", on_userdb_commit)
    event.listen(batchdb, "before_cursor_execute", on_batchdb_statement)
    event.listen(batchdb, "commit", on_batchdb_commit)
    spec = runtime.spec("tokenCleanupJob")
    await runtime.launcher.run(spec.job, runtime.parameters("crash-worker", at=RUN))


async def killed_in_chunk_2(
    databases: Databases, make_runtime: Any, tmp_path: Path, *, one_transaction: bool
) -> tuple[Running, set[int], set[int]]:
    """Run the worker until it freezes in chunk 2's commit, kill it; (running, gone, kept)."""
    running: Running = await make_runtime()
    gone, kept = await _tokens(running, expired=23, valid=4)
    ready = tmp_path / "ready"
    fields = {field: databases.urls[name] for name, field in FIELDS.items()}
    settings = {**fields, "jwt_secret": SECRET, "db_pool_size": 2}
    settings["token_cleanup_chunk_size"] = CHUNK
    settings["token_cleanup_one_transaction"] = one_transaction
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.doctoral.test_token_crash",
        json.dumps(settings),
        str(ready),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_for_file(ready, process, within_s=90)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
    return running, gone, kept


async def restart_counts_every_token(running: Running, gone: set[int], kept: set[int]) -> None:
    runtime = running.runtime
    [crashed] = await runtime.repository.find_running_executions("tokenCleanupJob")
    await runtime.recover()
    restarted = await runtime.launcher.wait(await runtime.launcher.restart(crashed.id))

    assert restarted.status is BatchStatus.COMPLETED, restarted.exit_status
    remaining = await _ids(running, U.refresh_token)
    assert kept <= remaining and not (gone & remaining)
    counts = counts_of(restarted)
    assert counts["refreshTokensDeleted"] == 23  # the dead chunk's five included
    assert counts["passwordResetTokensDeleted"] == 23
    history = await runtime.repository.require_job_execution(restarted.id)
    assert counts_of(history) == counts  # what the API and the report read back


async def test_counts_are_exact_after_a_kill_between_the_two_commits(
    databases: Databases, make_runtime: Any, tmp_path: Path
) -> None:
    running, gone, kept = await killed_in_chunk_2(
        databases, make_runtime, tmp_path, one_transaction=False
    )
    [crashed] = await running.runtime.repository.find_running_executions("tokenCleanupJob")
    [step] = crashed.step_executions
    assert step.commit_count == 1  # batchdb saw one chunk…
    assert len(gone & await _ids(running, U.refresh_token)) == 23 - 2 * CHUNK  # …userdb two
    await restart_counts_every_token(running, gone, kept)


if __name__ == "__main__":
    asyncio.run(worker(sys.argv[1], Path(sys.argv[2])))
