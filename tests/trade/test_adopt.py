"""`tranche db upgrade trade` on a database the original trade service created adopts it.

The original's schema is rebuilt from the reference (part B2: Flyway V1 tables and
foreign keys, the V2-V5 seeds, V6's ``submitted`` column, a V7 index), with a
Flyway history table and rows written as the original wrote them (blank-padded
``char(24)`` ids, versions above 1). After the upgrade the API serves and changes
those rows, and nothing the original wrote has moved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fixtures.servers import DatabaseFactory
from tests.trade.factories import ScriptedExecutionService, order_payload, trade_app
from tranche.core.migrations import upgrade

pytestmark = pytest.mark.postgres

ORIGINAL_SCHEMA = """
CREATE TABLE flyway_schema_history (
    installed_rank integer PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
    type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum integer,
    installed_by varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(),
    execution_time integer NOT NULL, success boolean NOT NULL
);
INSERT INTO flyway_schema_history VALUES
    (1, '1', 'init schema', 'SQL', 'V1__init_schema.sql', 1, 'postgres', now(), 10, true),
    (2, '6', 'trade order add submitted column', 'SQL', 'V6.sql', 2, 'postgres', now(), 1, true);

CREATE TABLE blotter (id serial, abbreviation varchar(20) NOT NULL,
    name varchar(100) NOT NULL, version integer NOT NULL DEFAULT 1,
    CONSTRAINT blotter_pk PRIMARY KEY (id));
CREATE TABLE trade_type (id serial, abbreviation varchar(10) NOT NULL,
    description varchar(60) NOT NULL, version integer NOT NULL DEFAULT 1,
    CONSTRAINT trade_type_pk PRIMARY KEY (id));
CREATE TABLE execution_status (id serial, abbreviation varchar(20) NOT NULL,
    description varchar(60) NOT NULL, version integer NOT NULL DEFAULT 1,
    CONSTRAINT execution_status_pk PRIMARY KEY (id));
CREATE TABLE destination (id serial, abbreviation varchar(20) NOT NULL,
    description varchar(60) NOT NULL, version integer NOT NULL DEFAULT 1,
    CONSTRAINT destination_pk PRIMARY KEY (id));
CREATE TABLE trade_order (
    id serial, order_id integer NOT NULL, portfolio_id char(24) NOT NULL,
    order_type char(10) NOT NULL, security_id char(24) NOT NULL,
    quantity decimal(18,8) NOT NULL, quantity_sent decimal(18,8) NOT NULL DEFAULT 0,
    limit_price decimal(18,8), trade_timestamp timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    version integer NOT NULL DEFAULT 1, blotter_id integer,
    CONSTRAINT trade_pk PRIMARY KEY (id),
    CONSTRAINT blotter__fk FOREIGN KEY (blotter_id) REFERENCES blotter (id)
        MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE);
CREATE UNIQUE INDEX trade_order_order_id_ndx ON trade_order (order_id);
ALTER TABLE trade_order ADD COLUMN submitted boolean DEFAULT false;
CREATE TABLE execution (
    id serial, execution_timestamp timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    execution_status_id integer NOT NULL, blotter_id integer, trade_type_id integer,
    trade_order_id integer NOT NULL, destination_id integer NOT NULL,
    quantity_ordered decimal(18,8) NOT NULL, quantity_placed decimal(18,8) NOT NULL,
    quantity_filled decimal(18,8) NOT NULL DEFAULT 0, limit_price decimal(18,8),
    version integer NOT NULL DEFAULT 1, execution_service_id integer NULL,
    CONSTRAINT execution_pk PRIMARY KEY (id),
    CONSTRAINT execution_status__fk FOREIGN KEY (execution_status_id)
        REFERENCES execution_status (id) MATCH FULL ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT trade_type__fk FOREIGN KEY (trade_type_id)
        REFERENCES trade_type (id) MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE,
    CONSTRAINT trade_order__fk FOREIGN KEY (trade_order_id)
        REFERENCES trade_order (id) MATCH FULL ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT destination__fk FOREIGN KEY (destination_id)
        REFERENCES destination (id) MATCH FULL ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT blotter__fk FOREIGN KEY (blotter_id)
        REFERENCES blotter (id) MATCH FULL ON DELETE SET NULL ON UPDATE CASCADE);
CREATE INDEX execution_service_id_ndx ON execution (execution_service_id);
CREATE INDEX idx_executions_status_timestamp_desc
    ON execution (execution_status_id, execution_timestamp DESC);

INSERT INTO blotter (abbreviation, name) VALUES
    ('Default', 'Default'), ('EQ', 'Equity'), ('FI', 'Fixed Income'), ('HOLD', 'Hold');
INSERT INTO trade_type (abbreviation, description) VALUES ('BUY', 'Buy'), ('SELL', 'Sell'),
    ('SHORT', 'Sell to Open'), ('COVER', 'Buy to Close'), ('EXRC', 'Exercise');
INSERT INTO destination (abbreviation, description) VALUES ('ML', 'Merrill Lynch'),
    ('RBC', 'Royal Bank of Canada'), ('JPM', 'Chase'), ('IB', 'Interactive Brokers'),
    ('INST', 'Instinet'), ('POSIT', 'Posit');
INSERT INTO execution_status (abbreviation, description) VALUES ('NEW', 'New'),
    ('SENT', 'Sent'), ('WORK', 'In progress'), ('FULL', 'Filled'), ('PART', 'Partial fill'),
    ('HOLD', 'Hold'), ('CNCL', 'Cancel'), ('CNCLD', 'Cancelled'),
    ('CPART', 'Cancelled with partial fill'), ('DEL', 'Delete');
"""

# Rows as the original's JPA wrote them: an order half sent (version bumped by each
# save), its execution already at the execution service, and an untouched order.
ORIGINAL_ROWS = """
INSERT INTO trade_order (order_id, portfolio_id, order_type, security_id, quantity,
    quantity_sent, limit_price, trade_timestamp, version, blotter_id, submitted)
VALUES (501, 'PORT1', 'BUY', 'SEC1', 100.5, 40, 12.25, '2024-05-01T10:00:00Z', 3, 2, false),
       (502, '5f47ac10b8e5a5f2c9d3e1a0', 'SELL', '5f47ac10b8e5a5f2c9d3e1b1', 10, 0, NULL,
        '2024-05-02T10:00:00Z', 1, NULL, false);
INSERT INTO execution (execution_timestamp, execution_status_id, blotter_id, trade_type_id,
    trade_order_id, destination_id, quantity_ordered, quantity_placed, quantity_filled,
    limit_price, version, execution_service_id)
VALUES ('2024-05-01T11:00:00Z', 1, 2, 1, 1, 3, 40, 40, 0, 12.25, 2, 9001);
"""


async def _answer_nothing(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
    raise AssertionError("adoption tests never reach the execution service")


@pytest.fixture
async def original_url(postgres_factory: DatabaseFactory) -> str:
    url = await postgres_factory("trade_original")
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute(ORIGINAL_SCHEMA)
        await conn.execute(ORIGINAL_ROWS)
    finally:
        await conn.close()
    return url


@pytest.fixture
async def adopted(original_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await upgrade("trade", original_url)
    async with trade_app(original_url, ScriptedExecutionService(_answer_nothing).transport()) as c:
        yield c


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def test_the_upgrade_adds_columns_and_leaves_every_row(original_url: str) -> None:
    before = await _fetch(original_url, "SELECT * FROM trade_order ORDER BY id")
    await upgrade("trade", original_url)
    await upgrade("trade", original_url)  # a second run finds nothing to do
    after = await _fetch(original_url, "SELECT * FROM trade_order ORDER BY id")
    assert [dict(r) for r in after] == [dict(r) for r in before]
    counts = await _fetch(
        original_url,
        "SELECT (SELECT count(*) FROM blotter) b, (SELECT count(*) FROM execution_status) s,"
        " (SELECT count(*) FROM flyway_schema_history) f",
    )
    assert dict(counts[0]) == {"b": 4, "s": 10, "f": 2}  # seeds not inserted twice
    columns = await _fetch(
        original_url,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'execution'",
    )
    assert {"average_price", "submission_claimed_at"} <= {r["column_name"] for r in columns}
    indexes = await _fetch(original_url, "SELECT indexname FROM pg_indexes")
    names = {r["indexname"] for r in indexes}
    assert {"idx_executions_status_timestamp_desc", "execution_trade_order_ndx"} <= names


async def test_the_api_serves_the_originals_rows(adopted: httpx.AsyncClient) -> None:
    order = (await adopted.get("/api/v1/tradeOrders/1")).json()
    assert order["portfolioId"] == "PORT1"  # char(24) padding not shown
    assert order["orderType"] == "BUY"
    assert order["quantity"] == 100.5
    assert order["quantitySent"] == 40
    assert order["version"] == 3
    assert order["blotter"]["abbreviation"] == "EQ"
    listed = await adopted.get("/api/v1/tradeOrders", params={"order_id": 502})
    assert [o["id"] for o in listed.json()] == [2]
    execution = (await adopted.get("/api/v1/executions/1")).json()
    assert execution["executionServiceId"] == 9001
    assert execution["quantityOrdered"] == "40.00"
    assert execution["averagePrice"] is None
    assert execution["tradeOrder"]["securityId"] == "SEC1"


async def test_the_originals_rows_can_be_changed(adopted: httpx.AsyncClient) -> None:
    fill = await adopted.put(
        "/api/v1/executions/1/fill",
        json={"executionStatus": "PART", "quantityFilled": 15, "version": 2},
    )
    assert fill.status_code == 200, fill.text
    assert fill.json()["version"] == 3
    submitted = await adopted.post(
        "/api/v1/tradeOrders/1/submit",
        params={"noExecuteSubmit": "true"},
        json={"quantity": 60.5, "destinationId": 1},
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["id"] == 2  # the original's serial continues
    order = (await adopted.get("/api/v1/tradeOrders/1")).json()
    assert order["quantitySent"] == 100.5
    assert order["submitted"] is True
    new = await adopted.post("/api/v1/tradeOrders", json=order_payload(orderId=503))
    assert new.status_code == 201, new.text
    assert new.json()["id"] == 3


async def test_a_partial_original_schema_is_refused(postgres_factory: DatabaseFactory) -> None:
    url = await postgres_factory("trade_partial")
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await conn.execute("CREATE TABLE blotter (id serial PRIMARY KEY)")
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="some of the trade service's tables"):
        await upgrade("trade", url)
