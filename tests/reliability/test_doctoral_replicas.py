"""Two doctoral replicas (``tranche serve doctoral`` processes) on one MariaDB batchdb.

tokenCleanupJob is scheduled every two seconds in both; the test waits until several
occurrences have run, stops both replicas, and checks that each occurrence (its
``runAt``, the fire time) has exactly one execution, that every one COMPLETED and every
fire-lock row belongs to one of them. How many each replica ran is reported.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.doctoral.factories import SECRET, opened
from tests.doctoral.harness import Databases
from tests.fixtures.waiting import eventually
from tests.reliability.doctoral_world import mariadb_world
from tranche.batch import BatchStatus, JobRepository
from tranche.batch.tables import fire_lock
from tranche.core.broker import free_port

# Slow: two service processes start (tens of seconds on a loaded machine) and at least
# six two-second occurrences must pass.
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).parents[2]
JOB = "tokenCleanupJob"
OCCURRENCES = 6


def replica_env(databases: Databases, kafka_bootstrap: str) -> dict[str, str]:
    urls = databases.urls
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DOCTORAL_BATCH_DB_URL": urls["batchdb"],
        "DOCTORAL_USER_DB_URL": urls["userdb"],
        "DOCTORAL_INSCRIPTION_DB_URL": urls["inscription_db"],
        "DOCTORAL_DEFENSE_DB_URL": urls["defensedb"],
        "DOCTORAL_NOTIFICATION_DB_URL": urls["notification_db"],
        "DOCTORAL_TOKEN_CLEANUP_CRON": "*/2 * * * * ?",
        "JWT_SECRET": SECRET,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_ENABLE_IDEMPOTENCE": "false",
        "LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
    }


async def test_each_scheduled_occurrence_runs_once_across_two_replicas(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    async with mariadb_world() as databases:
        env = replica_env(databases, kafka_bootstrap)
        tranche = str(Path(sys.executable).parent / "tranche")
        logs = [tmp_path / f"replica-{n}.log" for n in (1, 2)]
        processes = []
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    await asyncio.create_subprocess_exec(
                        tranche,
                        "serve",
                        "doctoral",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(free_port()),
                        cwd=tmp_path,
                        env=env,
                        stdout=out,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                )
        async with opened(databases.urls["batchdb"], "batchdb") as batchdb:
            repository = JobRepository(batchdb.engine)

            async def enough_completed() -> bool:
                for p in processes:
                    assert p.returncode is None, f"a replica exited with {p.returncode}"
                found = await repository.find_job_executions(JOB, limit=1000)
                return sum(e.status is BatchStatus.COMPLETED for e in found) >= OCCURRENCES

            try:
                await eventually(enough_completed, 400, f"{OCCURRENCES} completed occurrences")
            finally:
                for p in processes:
                    if p.returncode is None:
                        p.send_signal(signal.SIGTERM)
                for p in processes:
                    try:
                        await asyncio.wait_for(p.wait(), 60)
                    except TimeoutError:
                        p.kill()
                        await p.wait()

            executions = await repository.find_job_executions(JOB, limit=1000)
            async with batchdb.sessions() as s:
                fired = (
                    await s.execute(
                        sa.select(
                            fire_lock.c.fire_time, fire_lock.c.owner, fire_lock.c.job_execution_id
                        ).where(fire_lock.c.job_name == JOB)
                    )
                ).all()
        run_ats = Counter(e.parameters.value("runAt") for e in executions)
        twice = {k: n for k, n in run_ats.items() if n > 1}
        assert not twice, twice
        finished = [e for e in executions if e.status is not BatchStatus.STARTED]
        assert all(e.status is BatchStatus.COMPLETED for e in finished), [
            (e.id, e.status, e.exit_status) for e in finished
        ]
        assert sorted(r.job_execution_id for r in fired) == sorted(e.id for e in executions)
        owners = Counter(r.owner.rsplit(":", 1)[0] for r in fired)  # host:pid of the replica
        pids = {f"{p.pid}" for p in processes}
        assert {o.rsplit(":", 1)[-1] for o in owners} <= pids, owners
        started = [*sorted(owners.values(), reverse=True), 0]
        print(
            f"FIGURE doctoral two replicas: {len(executions)} scheduled occurrences, each run "
            f"once (fired by one replica: {started[0]}, by the other: {started[1]}), 0 twice, "
            f"{len(fired)} fire-lock rows"
        )
