"""A job whose process is killed with SIGKILL mid-run is never left STARTED for ever.

A real subprocess runs tokenCleanupJob through the engine, commits one chunk and is
killed. The next start of a replica (a fresh Runtime, as the app's lifespan builds
it) marks the execution FAILED with exit code CRASHED; it gets its history row,
audit row, failure event and mail and its metrics; ``/stats`` counts it; a new
trigger is accepted and the committed chunk's counts are kept. A crash on another
host is found by the scheduler's next tick once its heartbeat is stale.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.doctoral.factories import SECRET
from tests.doctoral.harness import FIELDS, Databases, Running
from tests.fixtures.smtp import Inbox
from tranche.batch import BatchStatus, JobParameters, JobRepository
from tranche.core.outbox import outbox_table
from tranche.doctoral import history
from tranche.doctoral.models import audit_log, job_execution_history

ROOT = Path(__file__).parents[2]
ADMIN = "exploitation@univ-exemple.fr"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def wait_for_file(path: Path, process: asyncio.subprocess.Process, within_s: float) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        text = await asyncio.to_thread(_read, path)
        if text:
            return text
        if process.returncode is not None:
            raise AssertionError(f"the worker exited early with {process.returncode}")
        await asyncio.sleep(0.05)
    raise AssertionError("the worker never committed its first chunk")


async def failure_events(running: Running, execution_id: int) -> list[dict[str, Any]]:
    async with running.runtime.sources.batchdb.sessions() as s:
        payloads = (await s.execute(sa.select(outbox_table.c.payload))).scalars().all()
    found = [json.loads(p) for p in payloads]
    return [
        e
        for e in found
        if e["donnees"].get("evenement") == "JOB_FAILURE"
        and e["donnees"].get("executionId") == execution_id
    ]


async def test_kill_9_mid_job_is_recovered_at_the_next_start(
    databases: Databases, make_runtime: Any, smtp_server: Inbox, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    fields = {field: databases.urls[name] for name, field in FIELDS.items()}
    worker_settings = {**fields, "jwt_secret": SECRET, "db_pool_size": 2}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.doctoral.crash_worker",
        json.dumps(worker_settings),
        str(ready),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        execution_id = int(await wait_for_file(ready, process, within_s=60))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
    assert process.returncode == -signal.SIGKILL

    running: Running = await make_runtime(
        admin_emails=[ADMIN],
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        mail_from="batch@univ-exemple.fr",
    )
    runtime = running.runtime
    before = await runtime.repository.require_job_execution(execution_id)
    assert before.status is BatchStatus.STARTED  # what everyone saw for ever until now

    recovered = await runtime.recover()  # what the app's lifespan does at start
    assert [e.id for e in recovered] == [execution_id]
    after = await runtime.repository.require_job_execution(execution_id)
    assert after.status is BatchStatus.FAILED
    assert after.exit_status.exit_code == "CRASHED"
    assert "no longer exists on this host" in after.exit_status.exit_description
    assert after.end_time is not None
    [step] = after.step_executions
    assert step.status is BatchStatus.FAILED
    assert (step.read_count, step.commit_count) == (5, 1)  # the committed chunk is kept

    async with runtime.sources.batchdb.sessions() as s:
        row = (
            await s.execute(
                sa.select(job_execution_history).where(
                    job_execution_history.c.job_execution_id == execution_id
                )
            )
        ).one()
        audit = (
            await s.execute(
                sa.select(audit_log.c.event_type, audit_log.c.status).where(
                    audit_log.c.execution_id == execution_id
                )
            )
        ).all()
    assert (row.status, row.exit_code, row.items_processed) == ("FAILED", "CRASHED", 5)
    assert ("JOB_EXECUTION", "FAILED") in {(a.event_type, a.status) for a in audit}
    [event] = await failure_events(running, execution_id)
    assert event["destinataire"] == ADMIN and event["priorite"] == "URGENTE"
    assert [m["To"] for m in smtp_server.messages] == [ADMIN]
    assert (
        running.registry.get_sample_value(
            "batch_job_executions_total", {"job": "tokenCleanupJob", "status": "FAILED"}
        )
        == 1.0
    )
    stats = await history.summary(runtime.sources.batchdb)
    assert stats.failed >= 1 and stats.last_failure is not None

    # Recovering again (another replica, the next tick) reports nothing twice.
    assert await runtime.recover() == []
    assert len(await failure_events(running, execution_id)) == 1

    # A new trigger is not refused, and the crashed one can be restarted afterwards.
    fresh = await runtime.launcher.run(
        runtime.spec("tokenCleanupJob").job, runtime.parameters("pytest")
    )
    assert fresh.status is BatchStatus.COMPLETED


async def test_a_crash_elsewhere_is_found_by_the_next_scheduler_tick(
    databases: Databases, make_runtime: Any
) -> None:
    running: Running = await make_runtime()
    runtime = running.runtime
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    # An execution created an hour ago by a process on another host, which then vanished.
    elsewhere = JobRepository(runtime.sources.batchdb.engine, clock=lambda: long_ago)
    dead = await elsewhere.create_job_execution(
        "dureeDoctoratAlertJob",
        JobParameters({"runAt": long_ago}),
        owner="autre-hote:4242:deadbeef",
        stale_after=timedelta(minutes=2),
    )
    await elsewhere.mark_started(dead)

    await runtime.scheduler.tick()

    after = await runtime.repository.require_job_execution(dead.id)
    assert after.status is BatchStatus.FAILED
    assert after.exit_status.exit_code == "CRASHED"
    assert "autre-hote:4242:deadbeef stopped renewing its job lock" in (
        after.exit_status.exit_description
    )
    async with runtime.sources.batchdb.sessions() as s:
        status = (
            await s.execute(
                sa.select(job_execution_history.c.status).where(
                    job_execution_history.c.job_execution_id == dead.id
                )
            )
        ).scalar_one()
    assert status == "FAILED"
