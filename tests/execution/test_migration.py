"""`tranche db upgrade execution` on the original's PostgreSQL database adopts its table."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.execution.harness import running
from tests.fixtures.servers import DatabaseFactory
from tranche.core.broker import EmbeddedBroker
from tranche.core.migrations import upgrade

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

# The original's Flyway V1 + V2 + one V3 index, and a row its batch path wrote.
ORIGINAL = """
CREATE TABLE public.execution (
    id serial NOT NULL,
    execution_status varchar(20) NOT NULL,
    trade_type varchar(10) NOT NULL,
    destination varchar(20) NOT NULL,
    security_id char(24) NOT NULL,
    quantity decimal(18,8) NOT NULL,
    limit_price decimal(18,8),
    received_timestamp timestamptz NOT NULL,
    sent_timestamp timestamptz,
    trade_service_execution_id integer,
    version integer NOT NULL DEFAULT 1,
    CONSTRAINT execution_pk PRIMARY KEY (id)
);
ALTER TABLE public.execution
    ADD COLUMN quantity_filled decimal(18,8) DEFAULT 0,
    ADD COLUMN average_price decimal(18,8) DEFAULT NULL;
CREATE INDEX IF NOT EXISTS idx_execution_status ON execution(execution_status);
CREATE INDEX IF NOT EXISTS idx_version ON execution(version);
INSERT INTO execution (execution_status, trade_type, destination, security_id, quantity,
    limit_price, received_timestamp, sent_timestamp, trade_service_execution_id, version,
    quantity_filled, average_price)
VALUES ('NEW', 'BUY', 'ML', 'ABC', 100, 25.5, now(), now(), 7, 2, 0, 0);
"""


async def test_the_originals_table_is_adopted(
    broker: EmbeddedBroker, postgres_factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = await postgres_factory("original")
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(ORIGINAL)
    finally:
        await conn.close()
    await upgrade("execution", url)
    async with running(url, broker.bootstrap_servers, tmp_path) as app:
        old = (await app.client.get("/api/v1/execution/1")).json()
        assert old["securityId"] == "ABC"
        assert old["version"] == 2
        assert old["averagePrice"] == 0
        new = await app.post(
            "/api/v1/executions",
            {
                "executionStatus": "NEW",
                "tradeType": "SELL",
                "destination": "RBC",
                "securityId": "DEF",
                "quantity": 5,
            },
        )
        assert new.status_code == 201
        assert new.json()["id"] == 2  # the serial continues
        names = await app.scalar(
            "SELECT string_agg(indexname, ',') FROM pg_indexes WHERE tablename = 'execution'"
        )
        indexes = set(names.split(","))
        assert {"idx_version", "idx_upper_execution_status", "idx_received_timestamp_id"} <= indexes
        assert "idx_execution_status" not in indexes  # replaced by its upper() form (0002)
        assert await app.scalar("SELECT count(*) FROM outbox") == 1
