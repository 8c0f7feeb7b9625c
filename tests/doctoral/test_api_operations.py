"""Administration without a shell: restart, abandon, execution detail and the list's total.

Restart and abandon are ROLE_ADMIN, audited (accepted and refused), 404 for an
unknown execution, 409 for a running, completed or abandoned one. The detail
shows each step's counters, the progress against the reader's estimate and the
stored traceback of a failure; the list carries its total in X-Total-Count. Ids
that do not fit batchdb's bigint, negative or non-numeric ids are a 400.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.doctoral.factories import admin_token
from tests.doctoral.harness import Databases, Running
from tests.doctoral.test_api import auth, finished, serving
from tranche.batch import BatchListener, JobParameters, JobRepository, StepContext
from tranche.doctoral import service
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.seed import Seeder
from tranche.doctoral.tables import userdb as U

BASE = "/api/batch/jobs/executions"
NOW = datetime.now(UTC)


async def audit_rows(runtime: Runtime, execution_id: int) -> set[tuple[str, str, str]]:
    async with runtime.sources.batchdb.sessions() as s:
        rows = await s.execute(
            sa.select(audit_log.c.event_type, audit_log.c.event_action, audit_log.c.status).where(
                audit_log.c.execution_id == execution_id
            )
        )
        return {(r.event_type, r.event_action, r.status) for r in rows}


async def test_restart_and_abandon_a_failed_execution(
    databases: Databases, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # userdb without its tables: tokenCleanupJob fails, and fails again when restarted.
    broken = f"sqlite+aiosqlite:///{tmp_path / 'empty-userdb.db'}"
    token = auth(admin_token())
    async with serving(databases, kafka_bootstrap, user_db_url=broken) as (app, client):
        runtime: Runtime = app.state.runtime
        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=token)
        first = r.json()["executionId"]
        failed = await finished(client, first)
        assert failed["status"] == "FAILED"
        # One line for people; the traceback is kept apart, for admins.
        assert "\n" not in failed["exitMessage"] and "refresh_token" in failed["exitMessage"]
        assert failed["failureDetail"].startswith("Traceback (most recent call last)")

        r = await client.post(f"{BASE}/{first}/restart", headers=token)
        assert r.status_code == 200, r.text
        body = r.json()
        second = body["executionId"]
        assert (body["restartOf"], body["jobName"]) == (first, "tokenCleanupJob")
        assert (await finished(client, second))["status"] == "FAILED"

        # Only the latest execution of an instance can be restarted.
        r = await client.post(f"{BASE}/{first}/restart", headers=token)
        assert r.status_code == 409 and "not the latest" in r.json()["message"]

        r = await client.post(f"{BASE}/{second}/abandon", headers=token)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ABANDONED"
        r = await client.post(f"{BASE}/{second}/restart", headers=token)
        assert r.status_code == 409, r.text

        assert ("JOB_RESTART", "RESTART", "ACCEPTED") in await audit_rows(runtime, first)
        assert ("JOB_RESTART", "RESTART", "REFUSED") in await audit_rows(runtime, first)
        second_audit = await audit_rows(runtime, second)
        assert {("JOB_ABANDON", "ABANDON", "ACCEPTED"), ("JOB_RESTART", "RESTART", "REFUSED")} <= (
            second_audit
        )


async def test_running_completed_and_unknown_executions_are_refused(
    databases: Databases, kafka_bootstrap: str
) -> None:
    token = auth(admin_token())
    async with serving(databases, kafka_bootstrap) as (app, client):
        runtime: Runtime = app.state.runtime
        # An execution running right now in another replica (its lock is fresh).
        other = JobRepository(runtime.sources.batchdb.engine)
        running = await other.create_job_execution(
            "dureeDoctoratAlertJob",
            JobParameters({"runAt": NOW - timedelta(days=400)}),
            owner="autre-replique:77:cafe",
            stale_after=timedelta(minutes=2),
        )
        await other.mark_started(running)
        for action in ("restart", "abandon"):
            r = await client.post(f"{BASE}/{running.id}/{action}", headers=token)
            assert r.status_code == 409, (action, r.text)
            assert "running" in r.json()["message"]
            assert ("JOB_" + action.upper(), action.upper(), "REFUSED") in await audit_rows(
                runtime, running.id
            )
        detail = (await client.get(f"{BASE}/{running.id}", headers=token)).json()
        assert detail["status"] == "STARTED"
        await other.request_stop(running.id, timedelta(minutes=2))

        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=token)
        done = await finished(client, r.json()["executionId"])
        assert done["status"] == "COMPLETED"
        for action in ("restart", "abandon"):
            r = await client.post(f"{BASE}/{done['executionId']}/{action}", headers=token)
            assert r.status_code == 409, (action, r.text)

        for action in ("restart", "abandon"):
            r = await client.post(f"{BASE}/987654321/{action}", headers=token)
            assert r.status_code == 404 and "987654321" in r.json()["message"]


async def test_ids_that_cannot_be_an_execution_are_a_400_never_a_500(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    token = auth(admin_token())
    async with serving(sqlite_databases, kafka_bootstrap) as (_app, client):
        for bad in (str(2**63), str(2**64 + 5), "-3", "0", "abc", "1.5"):
            calls: list[tuple[str, str]] = [
                ("GET", f"{BASE}/{bad}"),
                ("POST", f"{BASE}/{bad}/stop"),
                ("POST", f"{BASE}/{bad}/restart"),
                ("POST", f"{BASE}/{bad}/abandon"),
            ]
            for method, path in calls:
                r = await client.request(method, path, headers=token)
                assert r.status_code == 400, (method, path, r.status_code, r.text)
                assert "executionId" in r.text
        r = await client.get(f"{BASE}/{2**63 - 1}", headers=token)
        assert r.status_code == 404


async def test_detail_shows_steps_and_progress_and_the_list_its_total(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    token = auth(admin_token())
    # The jobs run just after the instant the tokens were seeded against (a millisecond
    # a reading, so each run is its own job instance): which are expired must not
    # depend on how long the suite has been running.
    seeded_at = datetime.now(UTC)
    ticks = itertools.count()

    def clock() -> datetime:
        return seeded_at + timedelta(milliseconds=next(ticks))

    async with serving(sqlite_databases, kafka_bootstrap, clock=clock) as (
        app,
        client,
    ):
        runtime: Runtime = app.state.runtime
        src = runtime.sources
        seeder = Seeder(
            src.userdb, src.inscription_db, src.defensedb, src.notification_db, seeded_at
        )
        await seeder.tokens(await seeder.users(30, "ROLE_DOCTORANT"), expired_share=0.5)
        counts = seeder.report.counts
        expired = counts["refresh_token expired"] + counts.get("password_reset_tokens expired", 0)
        ids = []
        for _ in range(3):
            r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=token)
            ids.append(r.json()["executionId"])
            await finished(client, ids[-1])
        detail: dict[str, Any] = (await client.get(f"{BASE}/{ids[0]}", headers=token)).json()
        steps = {s["stepName"]: s for s in detail["steps"]}
        assert set(steps) == {"cleanupRefreshTokensStep", "cleanupPasswordResetTokensStep"}
        refresh = steps["cleanupRefreshTokensStep"]
        assert refresh["readCount"] == counts["refresh_token expired"]
        assert refresh["writeCount"] == refresh["readCount"]
        assert refresh["commitCount"] >= 1 and refresh["skipCount"] == 0
        assert detail["progress"] == {"total": expired, "done": expired, "percent": 100.0}
        assert detail["failureDetail"] is None

        r = await client.get(
            "/api/batch/jobs/tokenCleanupJob/executions?page=0&size=2", headers=token
        )
        assert [e["executionId"] for e in r.json()] == ids[::-1][:2]
        assert r.headers["x-total-count"] == "3"


class PauseAfterSecondChunk(BatchListener):
    def __init__(self) -> None:
        self.chunks = 0
        self.paused = asyncio.Event()
        self.go_on = asyncio.Event()

    async def after_chunk(self, ctx: StepContext) -> None:
        self.chunks += 1
        if self.chunks == 2:
            self.paused.set()
            await self.go_on.wait()


async def test_progress_advances_while_the_job_runs(make_runtime: Any) -> None:
    probe = PauseAfterSecondChunk()
    running: Running = await make_runtime(listeners=[probe], token_cleanup_chunk_size=1)
    runtime = running.runtime
    owners = [await running.portal.user() for _ in range(5)]
    at = datetime(2025, 8, 1, 2, 0, tzinfo=UTC)
    async with runtime.sources.userdb.transaction() as s:
        await s.execute(
            sa.insert(U.refresh_token),
            [
                {"user_id": o, "token": f"progress-{o}", "expiry_date": datetime(2025, 7, 1)}
                for o in owners
            ],
        )
    execution_id = await runtime.start("tokenCleanupJob", "pytest", at=at)
    await asyncio.wait_for(probe.paused.wait(), timeout=30)
    during = await service.execution_detail(runtime, execution_id)
    assert during.status == "STARTED"
    assert during.progress is not None
    total = during.progress.total
    assert total >= 5 and during.progress.done == 2
    assert during.progress.percent == round(100.0 * 2 / total, 1)
    assert during.steps[0].commit_count == 2 and during.steps[0].write_count == 2
    probe.go_on.set()
    final = await runtime.launcher.wait(execution_id)
    assert final.status.value == "COMPLETED"
    after = await service.execution_detail(runtime, execution_id)
    assert after.progress is not None and after.progress.percent == 100.0
