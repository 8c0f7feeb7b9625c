"""The execution and trade services under the runbook's least-privilege PostgreSQL grants.

The grants are read from ``docs/runbook.md`` itself (the ``Execution (PostgreSQL)`` and
``Trade (PostgreSQL)`` blocks), so the test checks what operators are told to run. Each
test makes scratch databases owned by ``postgres`` (the migration account here), a fresh
``LOGIN`` role per service holding only its block, and runs the services in process with
their database URLs as those roles. Once the block is applied after ``tranche db
upgrade`` (its ``GRANT … ON ALL …`` lines do the work), once before it on an empty
database (only its ``ALTER DEFAULT PRIVILEGES`` lines can cover the tables the upgrade
then creates). The same roles are refused DDL with SQLSTATE 42501.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.execution.factories import item
from tests.execution.harness import encode, make_settings
from tests.fixtures.broker import unique_topic
from tests.fixtures.servers import PG_ADMIN, postgres_databases
from tests.fixtures.waiting import consume, eventually
from tests.trade.factories import order_payload, trade_settings
from tranche.core.broker import EmbeddedBroker
from tranche.core.clock import utc_now
from tranche.core.idempotency import IdempotencyStore
from tranche.core.migrations import upgrade
from tranche.core.outbox.store import purge_sent
from tranche.execution.app import ExecutionParts
from tranche.execution.app import create_app as create_execution_app
from tranche.execution.models import execution_table, idempotency
from tranche.trade.app import create_app as create_trade_app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
#: insufficient_privilege
DENIED = "42501"
N = 40


def documented_grants(service: str) -> list[str]:
    """The statements of the runbook's block for ``service`` (``execution`` / ``trade``)."""
    text = RUNBOOK.read_text(encoding="utf-8")
    heading = service.capitalize() + " (PostgreSQL)"
    block = re.search(re.escape(heading) + r".*?```sql\n(.*?)```", text, re.S)
    assert block is not None, f"runbook: no {heading} grants block"
    lines = [line.split("--", 1)[0] for line in block.group(1).splitlines()]
    statements = [" ".join(s.split()) for s in " ".join(lines).split(";")]
    return [s for s in statements if s]


def for_test(statement: str, service: str, database: str, role: str) -> str:
    """``statement`` with the runbook's names replaced by this test's."""
    statement = re.sub(rf"\b{service}_migrator\b", "postgres", statement)
    statement = re.sub(rf"\bDATABASE {service}\b", f'DATABASE "{database}"', statement)
    return re.sub(rf"\bTO {service}\b", f"TO {role}", statement)


@dataclass
class Account:
    service: str
    admin_url: str  # the migration account's (postgres) SQLAlchemy URL
    url: str  # the same database as the least-privilege role
    role: str
    password: str

    @property
    def database(self) -> str:
        return sa.make_url(self.admin_url).database or ""

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url.replace("+asyncpg", ""))

    async def grant(self) -> None:
        """Apply the runbook block as the migration account, on this database."""
        conn = await asyncpg.connect(self.admin_url.replace("+asyncpg", ""))
        try:
            for statement in documented_grants(self.service):
                await conn.execute(for_test(statement, self.service, self.database, self.role))
        finally:
            await conn.close()


@asynccontextmanager
async def accounts(services: list[str], granted: str) -> AsyncIterator[dict[str, Account]]:
    """A migrated scratch database and a fresh role with the runbook grants, per service."""
    admin = await asyncpg.connect(PG_ADMIN)
    roles: list[str] = []
    try:
        async with postgres_databases() as factory:
            out: dict[str, Account] = {}
            for service in services:
                admin_url = await factory(f"lp{service[:5]}")
                role, password = f"lp_{service[:5]}_{secrets.token_hex(5)}", secrets.token_hex(16)
                await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
                roles.append(role)
                url = sa.make_url(admin_url).set(username=role, password=password)
                account = Account(
                    service, admin_url, url.render_as_string(hide_password=False), role, password
                )
                if granted == "before upgrade":
                    await account.grant()
                await upgrade(service, admin_url)
                if granted == "after upgrade":
                    await account.grant()
                out[service] = account
            yield out
        # The databases are gone (with their grants and default privileges): the roles own
        # nothing and hold nothing, so they drop cleanly.
    finally:
        for role in roles:
            await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


async def assert_no_ddl(account: Account, table: str) -> list[str]:
    """As the role: every DDL statement refused with 42501; returns them."""
    statements = [
        "CREATE TABLE lp_probe (id integer)",
        "CREATE SCHEMA lp_probe",
        f"ALTER TABLE {table} ADD COLUMN lp_probe integer",
        f"DROP TABLE {table}",
        f"TRUNCATE TABLE {table}",
        f"CREATE INDEX lp_probe ON {table} (id)",
    ]
    conn = await account.connect()
    try:
        for statement in statements:
            with pytest.raises(asyncpg.PostgresError) as refused:
                await conn.execute(statement)
            assert refused.value.sqlstate == DENIED, (statement, refused.value)
        # The relay's ANALYZE of a large backlog needs ownership: under these grants it is
        # skipped with a warning, never an error (autovacuum's analyze covers the table).
        await conn.execute("ANALYZE outbox" if account.service == "execution" else "SELECT 1")
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") is not None
    finally:
        await conn.close()
    return statements


@asynccontextmanager
async def serving(app: FastAPI, base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


GRANTED = ["after upgrade", "before upgrade"]


@pytest.mark.parametrize("granted", GRANTED)
async def test_execution_service_under_least_privilege(
    granted: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    async with accounts(["execution"], granted) as acc:
        account = acc["execution"]
        topic = unique_topic("orders")
        settings = make_settings(account.url, broker.bootstrap_servers, tmp_path, topic)
        app = create_execution_app(settings)
        async with serving(app, "http://execution.test") as client:
            parts: ExecutionParts = app.state.execution
            items = [item(quantity=i + 1) for i in range(N)]
            headers = {"content-type": "application/json", "Idempotency-Key": "lp-batch-1"}
            body = encode({"executions": items})
            r = await client.post("/api/v1/executions/batch", content=body, headers=headers)
            assert r.status_code == 201, r.text[:500]
            assert r.json()["successful"] == N
            ids = [res["execution"]["id"] for res in r.json()["results"]]
            replay = await client.post("/api/v1/executions/batch", content=body, headers=headers)
            assert (replay.status_code, replay.json()) == (201, r.json())

            async def sent() -> int:
                async with parts.db.sessions() as s:
                    stmt = (
                        sa.select(sa.func.count())
                        .select_from(execution_table)
                        .where(
                            execution_table.c.id.in_(ids),
                            execution_table.c.sent_timestamp.is_not(None),
                        )
                    )
                    return int((await s.execute(stmt)).scalar_one())

            await eventually(sent, 30, "the relay to stamp every execution sent", until=N)
            records = await consume(broker.bootstrap_servers, topic, N)
            assert {int(rec.key) for rec in records if rec.key} == set(ids)

            one = await client.get(f"/api/v1/execution/{ids[0]}")
            assert one.status_code == 200, one.text
            assert Decimal(str(one.json()["quantity"])) == 1
            put = await client.put(
                f"/api/v1/execution/{ids[0]}",
                content=encode({"quantityFilled": 1, "averagePrice": 9.5, "version": 1}),
                headers={"content-type": "application/json"},
            )
            assert put.status_code == 200, put.text
            listed = await client.get("/api/v1/executions", params={"limit": 5})
            assert listed.status_code == 200 and listed.json()["pagination"]["totalElements"] >= N
            # The background loops' housekeeping, as this role, a day later: the expired
            # idempotency key and the sent outbox rows are purged.
            later = utc_now() + timedelta(days=1)
            store = IdempotencyStore(
                parts.db, ttl_s=60, lease_s=60, wait_s=1, clock=lambda: later, table=idempotency
            )
            assert await store.purge_expired() == 1
            async with parts.db.transaction() as s:
                purged = await purge_sent(s, later, 10 * N)
            assert purged == N
            assert (await client.get("/actuator/health")).json()["status"] == "UP"
        refused = await assert_no_ddl(account, "execution")
    print(
        f"FIGURE least privilege PG ({granted}): execution batch of {N} → 201 as "
        f"{account.role}, relayed ({len(records)} records), replayed, GET/PUT/list, key "
        f"and {purged} outbox rows purged; {len(refused)} DDL statements refused with {DENIED}"
    )


class _Deferred:
    """An ASGI app filled in later (the two apps call each other)."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None
        await self.app(scope, receive, send)


@pytest.mark.parametrize("granted", GRANTED)
async def test_trade_service_under_least_privilege(
    granted: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Trade and the real execution service, each as its own least-privilege role: lookups,
    orders, a submission creating executions at both, a fill coming back."""
    async with accounts(["trade", "execution"], granted) as acc:
        trade_acc, execution_acc = acc["trade"], acc["execution"]
        deferred = _Deferred()
        async with contextlib.AsyncExitStack() as stack:
            trade_http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=deferred))
            )
            execution_app = create_execution_app(
                make_settings(
                    execution_acc.url,
                    broker.bootstrap_servers,
                    tmp_path,
                    unique_topic("orders"),
                    trade_service_base_url="http://trade.test",
                    callback_poll_interval_ms=50,
                    callback_initial_backoff_ms=50,
                ),
                trade_http=trade_http,
            )
            trade_app = create_trade_app(
                trade_settings(trade_acc.url),
                transport=httpx.ASGITransport(app=execution_app, raise_app_exceptions=False),
            )
            deferred.app = trade_app
            execution = await stack.enter_async_context(
                serving(execution_app, "http://execution.test")
            )
            trade = await stack.enter_async_context(serving(trade_app, "http://trade.test"))

            blotters = await trade.get("/api/v1/blotters")
            assert blotters.status_code == 200 and blotters.json(), blotters.text
            made = await trade.post(
                "/api/v1/blotters", json={"abbreviation": "LP", "name": "Least privilege"}
            )
            assert made.status_code == 201, made.text
            for lookup in ("tradeTypes", "destinations", "executionStatuses"):
                got = await trade.get(f"/api/v1/{lookup}")
                assert got.status_code == 200 and got.json(), (lookup, got.text)

            order = await trade.post(
                "/api/v1/tradeOrders", json=order_payload(quantity=300, blotterId=made.json()["id"])
            )
            assert order.status_code == 201, order.text
            oid = order.json()["id"]
            sent = await trade.post(
                f"/api/v1/tradeOrders/{oid}/submit", json={"quantity": 300, "destinationId": 1}
            )
            assert sent.status_code == 201, sent.text
            assert sent.json()["executionStatus"]["abbreviation"] == "SENT"
            assert (await trade.get(f"/api/v1/tradeOrders/{oid}")).status_code == 200
            listed = await trade.get("/api/v1/tradeOrders")
            assert listed.status_code == 200, listed.text

            theirs = (
                await execution.get(f"/api/v1/execution/{sent.json()['executionServiceId']}")
            ).json()
            put = await execution.put(
                f"/api/v1/execution/{theirs['id']}",
                json={"quantityFilled": 120, "averagePrice": 10.5, "version": theirs["version"]},
            )
            assert put.status_code == 200, put.text

            async def filled() -> dict[str, Any] | None:
                got: dict[str, Any] = (
                    await trade.get(f"/api/v1/executions/{sent.json()['id']}")
                ).json()
                return got if got["quantityFilled"] != "0.00" else None

            ours = await eventually(filled, 60, "the fill to reach the trade service")
            assert ours["quantityFilled"] == "120.00"
        refused = await assert_no_ddl(trade_acc, "trade_order")
        await assert_no_ddl(execution_acc, "execution")
    print(
        f"FIGURE least privilege PG ({granted}): trade as {trade_acc.role} and execution as "
        f"{execution_acc.role}: lookups, blotter and order created, submitted (SENT), fill "
        f"delivered back; {len(refused)} DDL statements refused with {DENIED} for each"
    )
