"""The admin API: auth on every endpoint, the original's paths and fields, clear JSON errors."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from tests.doctoral.factories import SECRET, admin_token
from tests.doctoral.harness import Databases
from tests.fixtures.waiting import eventually
from tranche.batch import BatchSettings
from tranche.core.clock import Clock, utc_now
from tranche.core.jwt import issue_token
from tranche.core.settings import KafkaSettings
from tranche.doctoral.app import create_app
from tranche.doctoral.models import audit_log
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.seed import Seeder

ENDPOINTS = [
    ("POST", "/api/batch/jobs/tokenCleanupJob/run"),
    ("GET", "/api/batch/jobs"),
    ("GET", "/api/batch/jobs/tokenCleanupJob/executions"),
    ("GET", "/api/batch/jobs/executions/1"),
    ("POST", "/api/batch/jobs/executions/1/stop"),
    ("POST", "/api/batch/jobs/executions/1/restart"),
    ("POST", "/api/batch/jobs/executions/1/abandon"),
    ("GET", "/api/batch/jobs/stats"),
]
NOW = datetime.now(UTC)


def _alg_none() -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims = {"sub": "x@y.fr", "roles": ["ROLE_ADMIN"], "iss": "user-service", "exp": 4102444800}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


BAD_TOKENS = {
    "no token": None,
    "expired": admin_token(now=NOW - timedelta(hours=2)),
    "wrong signature": issue_token(
        b"some-other-secret-that-is-long-enough!!", "admin@univ.fr", ["ROLE_ADMIN"], "user-service"
    ),
    "alg none": _alg_none(),
    "other issuer": admin_token(issuer="someone-else"),
    "not a JWT": "abc.def",
}


@asynccontextmanager
async def serving(
    databases: Databases, kafka_bootstrap: str, clock: Clock = utc_now, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    overrides.setdefault("batch", BatchSettings(scheduler_enabled=False))
    settings = databases.settings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, enable_idempotence=False),
        **overrides,
    )
    app = create_app(settings, clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://batch") as client:
            yield app, client


def auth(token: str | None) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


async def finished(client: httpx.AsyncClient, execution_id: int) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await client.get(
                f"/api/batch/jobs/executions/{execution_id}", headers=auth(admin_token())
            )
        ).json()
        return None if body["status"] in ("STARTING", "STARTED", "STOPPING") else body

    body: dict[str, Any] = await eventually(ended, 30, f"execution {execution_id} to end")
    return body


async def test_every_endpoint_refuses_bad_tokens_and_non_admins(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap) as (_app, client):
        for method, path in ENDPOINTS:
            for why, token in BAD_TOKENS.items():
                r = await client.request(method, path, headers=auth(token))
                assert r.status_code == 401, (method, path, why, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
                body = r.json()
                assert body["status"] == 401 and body["path"] == path
            student = admin_token(roles=("ROLE_DOCTORANT", "ROLE_DOCTORANT_ACTIF"))
            r = await client.request(method, path, headers=auth(student))
            assert r.status_code == 403, (method, path)
            assert r.json()["message"] == "Access denied: ROLE_ADMIN is required"
        # Nothing was triggered by all those refused calls.
        r = await client.get("/api/batch/jobs/stats", headers=auth(admin_token()))
        assert r.json()["totalExecutions"] == 0


async def test_admin_runs_a_job_and_reads_it_back_under_one_id(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap) as (app, client):
        runtime: Runtime = app.state.runtime
        src = runtime.sources
        seeder = Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, NOW)
        await seeder.tokens(await seeder.users(30, "ROLE_DOCTORANT"), expired_share=0.5)
        expired = seeder.report.counts["refresh_token expired"]

        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=auth(admin_token()))
        assert r.status_code == 200, r.text
        trigger = r.json()
        assert set(trigger) == {"executionId", "jobName", "status", "startTime", "message"}
        assert trigger["status"] in ("STARTING", "STARTED")
        assert datetime.fromisoformat(trigger["startTime"]).tzinfo is None
        execution_id = trigger["executionId"]

        detail = await finished(client, execution_id)
        assert detail["executionId"] == execution_id
        assert detail["status"] == "COMPLETED"
        assert detail["counts"]["refreshTokensDeleted"] == expired
        assert detail["itemsProcessed"] >= expired and detail["itemsFailed"] == 0
        assert detail["triggeredBy"] == "admin@univ.fr"
        assert detail["duration"].endswith("s") and detail["duration"] != "N/A"

        page = (
            await client.get(
                "/api/batch/jobs/tokenCleanupJob/executions?page=0&size=5",
                headers=auth(admin_token()),
            )
        ).json()
        assert [e["executionId"] for e in page] == [execution_id]

        jobs = (await client.get("/api/batch/jobs", headers=auth(admin_token()))).json()
        by_name = {j["name"]: j for j in jobs}
        assert set(by_name) == {
            "tokenCleanupJob",
            "dureeDoctoratAlertJob",
            "monthlyReportJob",
            "archiveJob",
            "dataConsistencyJob",
        }
        assert by_name["dataConsistencyJob"]["cronExpression"] == "0 0 23 * * ?"
        assert by_name["tokenCleanupJob"]["cronExpression"] == "0 0 2 * * ?"
        assert by_name["tokenCleanupJob"]["lastStatus"] == "COMPLETED"
        assert by_name["dureeDoctoratAlertJob"]["cronExpression"] == "0 0 8 ? * MON"
        assert by_name["dureeDoctoratAlertJob"]["lastExecution"] is None

        stats = (await client.get("/api/batch/jobs/stats", headers=auth(admin_token()))).json()
        assert stats["totalExecutions"] == 1 and stats["successRate"] == 100.0
        assert stats["lastFailure"] is None

        async with src.batchdb.sessions() as s:
            rows = (
                await s.execute(
                    sa.select(audit_log.c.event_type, audit_log.c.user_id, audit_log.c.ip_address)
                    .where(audit_log.c.execution_id == execution_id)
                    .order_by(audit_log.c.seq)
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("MANUAL_TRIGGER", "admin@univ.fr", "10.1.2.3"),
            ("JOB_EXECUTION", "admin@univ.fr", None),
        ]


async def test_clear_errors_for_unknown_jobs_ids_and_bad_pages(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    headers = auth(admin_token())
    async with serving(sqlite_databases, kafka_bootstrap) as (_app, client):
        r = await client.post("/api/batch/jobs/noSuchJob/run", headers=headers)
        assert r.status_code == 404
        assert r.json()["message"] == (
            "Unknown job 'noSuchJob' (known jobs: archiveJob, dataConsistencyJob, "
            "dureeDoctoratAlertJob, monthlyReportJob, tokenCleanupJob)"
        )
        r = await client.get("/api/batch/jobs/nope/executions", headers=headers)
        assert r.status_code == 404
        for bad in ("page=-1", "size=0", "size=101", "page=x"):
            r = await client.get(
                f"/api/batch/jobs/tokenCleanupJob/executions?{bad}", headers=headers
            )
            assert r.status_code == 400, bad
            field = bad.split("=")[0]
            assert field in r.json()["validationErrors"], r.json()
        r = await client.get(
            "/api/batch/jobs/tokenCleanupJob/executions?page=99&size=100", headers=headers
        )
        assert r.status_code == 200 and r.json() == []
        r = await client.get("/api/batch/jobs/executions/999999", headers=headers)
        assert r.status_code == 404 and "999999" in r.json()["message"]
        r = await client.get("/api/batch/jobs/executions/abc", headers=headers)
        assert r.status_code == 400
        r = await client.post("/api/batch/jobs/executions/999999/stop", headers=headers)
        assert r.status_code == 404


async def test_trigger_is_rate_limited_per_admin(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap, trigger_rate_limit="2/minute") as (
        _app,
        client,
    ):
        first, second = admin_token(), admin_token(subject="other.admin@univ.fr")
        for _ in range(2):
            r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=auth(first))
            assert r.status_code == 200, r.text
            await finished(client, r.json()["executionId"])
        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=auth(first))
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert "retry in" in r.json()["message"]
        # Another admin has a window of their own.
        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=auth(second))
        assert r.status_code == 200


async def test_stop_a_running_execution_then_refuse_to_stop_it_again(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    headers = auth(admin_token())
    async with serving(sqlite_databases, kafka_bootstrap, token_cleanup_chunk_size=1) as (
        app,
        client,
    ):
        src = app.state.runtime.sources
        seeder = Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, NOW)
        await seeder.tokens(await seeder.users(3000, "ROLE_DOCTORANT"), expired_share=1.0)
        run = (await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)).json()
        execution_id = run["executionId"]
        r = await client.post(f"/api/batch/jobs/executions/{execution_id}/stop", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["status"] in ("STOPPING", "STOPPED")
        again = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)
        assert again.status_code in (200, 409)  # 409 while the stop is still in progress
        detail = await finished(client, execution_id)
        assert detail["status"] == "STOPPED"
        assert detail["itemsProcessed"] < 3000
        r = await client.post(f"/api/batch/jobs/executions/{execution_id}/stop", headers=headers)
        assert r.status_code == 400
        assert (
            r.json()["message"] == f"Job execution {execution_id} is not running (status STOPPED)"
        )


async def test_already_running_job_is_a_conflict(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    headers = auth(admin_token())
    async with serving(sqlite_databases, kafka_bootstrap, token_cleanup_chunk_size=1) as (
        app,
        client,
    ):
        src = app.state.runtime.sources
        seeder = Seeder(src.userdb, src.inscription_db, src.defensedb, src.notification_db, NOW)
        await seeder.tokens(await seeder.users(2000, "ROLE_DOCTORANT"), expired_share=1.0)
        first = (await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)).json()
        r = await client.post("/api/batch/jobs/tokenCleanupJob/run", headers=headers)
        assert r.status_code == 409
        assert r.json()["message"].startswith("Job 'tokenCleanupJob' is already running")
        await client.post(
            f"/api/batch/jobs/executions/{first['executionId']}/stop", headers=headers
        )
        await finished(client, first["executionId"])


@pytest.mark.parametrize("path", ["/actuator/health", "/actuator/info", "/actuator/prometheus"])
async def test_actuator_is_public(
    sqlite_databases: Databases, kafka_bootstrap: str, path: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap, batch=BatchSettings()) as (_app, client):
        r = await client.get(path)
        assert r.status_code == 200, r.text
        if path.endswith("health"):
            # Everyone sees the status; only an admin sees the components and their details.
            assert r.json() == {"status": "UP"}
            student = admin_token(roles=("ROLE_DOCTORANT",))
            for headers in ({"Authorization": f"Bearer {student}"}, {"Authorization": "Bearer x"}):
                assert (await client.get(path, headers=headers)).json() == {"status": "UP"}
            r = await client.get(path, headers=auth(admin_token()))
            components = r.json()["components"]
            assert {
                "batchdb",
                "userdb",
                "inscription_db",
                "defensedb",
                "notification_db",
                "kafka",
            } <= set(components)
            assert all(c["status"] == "UP" for c in components.values())
        elif path.endswith("info"):
            jobs = {j["name"]: j for j in r.json()["batch"]["jobs"]}
            fire = datetime.fromisoformat(jobs["dureeDoctoratAlertJob"]["nextFireTime"])
            assert fire.weekday() == 0 and (fire.hour, fire.minute) == (8, 0)
        else:
            assert "batch_jobs_active" in r.text and "db_pool_size" in r.text


async def test_openapi_declares_the_bearer_scheme(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap) as (_app, client):
        spec = (await client.get("/openapi.json")).json()
    scheme = spec["components"]["securitySchemes"]["Bearer Authentication"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    run = spec["paths"]["/api/batch/jobs/{jobName}/run"]["post"]
    assert run["security"] == [{"Bearer Authentication": []}]
    assert SECRET not in json.dumps(spec)


async def test_redis_rate_limit_is_shared_by_replicas() -> None:
    """Two processes' limiters on one Redis count the same admin's triggers together."""
    import uuid

    from tranche.core.errors import ApiError
    from tranche.doctoral.auth import TriggerLimiter

    replicas = [TriggerLimiter("2/minute", "redis://127.0.0.1:6379") for _ in range(2)]
    who = f"admin-{uuid.uuid4().hex}@univ.fr"
    try:
        await replicas[0].hit(who)
    except Exception as exc:  # the limiter reaches Redis on its first hit
        if isinstance(exc, ApiError):
            raise
        for limiter in replicas:
            await limiter.close()
        pytest.skip(f"Redis unreachable: {type(exc).__name__}: {exc}")
    await replicas[1].hit(who)
    try:
        with pytest.raises(ApiError) as refused:
            await replicas[0].hit(who)
    finally:
        for limiter in replicas:
            await limiter.close()
    assert refused.value.status == 429
    assert refused.value.headers is not None and int(refused.value.headers["Retry-After"]) >= 1
