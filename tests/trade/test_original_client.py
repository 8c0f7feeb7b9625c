"""A client of the original services passes against tranche after adopting their databases.

Both databases are built as the original Java services left them (Flyway history,
schemas, seeded lookups, rows their code wrote: :mod:`tests.fixtures.originals`), then
``tranche db upgrade`` adopts them and the two tranche services run over loopback on
them, wired to each other. The client (:mod:`tests.fixtures.original_client`, its DTOs
in :mod:`tests.fixtures.original_dtos`) is transcribed from the originals' DTOs and
controllers, not from tranche: each call expects the original's path, status code
and every field of its response DTO.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.original_client import OriginalExecutionClient, OriginalTradeClient
from tests.fixtures.servers import DatabaseFactory
from tests.trade.peers import Peers, peers
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

_order_ids = count(7000)


@pytest.fixture(scope="module")
async def env(
    postgres_factory: DatabaseFactory,
    broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Peers]:
    data_dir: Path = tmp_path_factory.mktemp("originals")
    async with peers(
        "loopback", postgres_factory, broker.bootstrap_servers, data_dir, originals=True
    ) as p:
        yield p


@pytest.fixture
def trade(env: Peers) -> OriginalTradeClient:
    return OriginalTradeClient(env.trade)


@pytest.fixture
def execution(env: Peers) -> OriginalExecutionClient:
    return OriginalExecutionClient(env.execution)


def post_dto(**changes: Any) -> dict[str, Any]:
    """A TradeOrderPostDTO."""
    body: dict[str, Any] = {
        "orderId": next(_order_ids),
        "portfolioId": "5f47ac10b8e5a5f2c9d3e1a0",
        "orderType": "BUY",
        "securityId": "5f47ac10b8e5a5f2c9d3e1b1",
        "quantity": Decimal("250.5"),
        "limitPrice": Decimal("9999999999.99999999"),
        "tradeTimestamp": "2024-06-01T12:00:00Z",
        "blotterId": 2,
    }
    body.update(changes)
    return body


async def test_the_originals_rows_read_as_the_original_sent_them(
    trade: OriginalTradeClient, execution: OriginalExecutionClient
) -> None:
    order = await trade.trade_order(1)
    assert (order.orderId, order.portfolioId, order.orderType) == (501, "PORT1", "BUY")
    assert (order.quantity, order.quantitySent, order.version) == (Decimal("100.5"), 40, 3)
    assert order.blotter is not None and order.blotter.abbreviation == "EQ"
    listed, total = await trade.trade_orders(order_id=502)
    assert ([o.id for o in listed], total) == ([2], "1")
    sent = await trade.execution(1)
    assert (sent.executionServiceId, sent.quantityOrdered, sent.version) == (9001, 40, 2)
    assert sent.executionStatus.abbreviation == "NEW"
    assert sent.tradeOrder.id == 1
    theirs = await execution.execution(3)
    assert theirs.quantity == Decimal("1234567890.12345678")
    assert (theirs.executionStatus, theirs.quantityFilled, theirs.version) == ("PART", 40, 3)
    assert theirs.securityId == theirs.security.securityId == "SEC3"


@pytest.mark.parametrize(
    ("kind", "post", "seeded"),
    [
        (
            "blotter",
            {"abbreviation": "NEWB", "name": "New blotter"},
            ["Default", "EQ", "FI", "HOLD"],
        ),
        (
            "tradeType",
            {"abbreviation": "XT", "description": "Extra"},
            ["BUY", "SELL", "SHORT", "COVER", "EXRC"],
        ),
        (
            "destination",
            {"abbreviation": "XD", "description": "Extra"},
            ["ML", "RBC", "JPM", "IB", "INST", "POSIT"],
        ),
        (
            "executionStatus",
            {"abbreviation": "XS", "description": "Extra"},
            ["NEW", "SENT", "WORK", "FULL", "PART", "HOLD", "CNCL", "CNCLD", "CPART", "DEL"],
        ),
    ],
)
async def test_lookups_keep_their_seeded_ids_and_can_be_managed(
    trade: OriginalTradeClient, kind: str, post: dict[str, Any], seeded: list[str]
) -> None:
    rows = await trade.lookups(kind)
    assert [r.abbreviation for r in rows][: len(seeded)] == seeded
    assert [r.id for r in rows][: len(seeded)] == list(range(1, len(seeded) + 1))
    assert (await trade.lookup(kind, 2)).abbreviation == seeded[1]
    created = await trade.create_lookup(kind, post)
    assert created.id == len(seeded) + 1  # the original's serial continues
    put = {"id": created.id, **post, "abbreviation": post["abbreviation"] + "2", "version": 1}
    updated = await trade.update_lookup(kind, created.id, put)
    assert (updated.abbreviation, updated.version) == (post["abbreviation"] + "2", 2)
    await trade.delete_lookup(kind, created.id, updated.version)
    await trade.lookup_missing(kind, created.id)


async def test_trade_orders_are_created_changed_and_deleted(trade: OriginalTradeClient) -> None:
    created = await trade.create_trade_order(post_dto())
    assert created.limitPrice == Decimal("9999999999.99999999")
    assert (created.quantitySent, created.submitted, created.version) == (0, False, 1)
    put = {**post_dto(orderId=created.orderId, quantity=Decimal("300")), "id": created.id}
    updated = await trade.update_trade_order(created.id, {**put, "version": created.version})
    assert (updated.quantity, updated.version) == (300, 2)
    await trade.delete_trade_order(created.id, updated.version)
    await trade.trade_order_missing(created.id)

    bulk = await trade.create_trade_orders_bulk([post_dto(), post_dto(orderType="SELL")])
    assert (bulk.status, bulk.successful, bulk.failed) == ("SUCCESS", 2, 0)
    assert [r.requestIndex for r in bulk.results] == [0, 1]
    made = [r.tradeOrder for r in bulk.results if r.tradeOrder is not None]
    assert [o.orderType for o in made] == ["BUY", "SELL"]
    assert (await trade.trade_order(made[1].id)).orderId == made[1].orderId
    refused = await trade.create_trade_orders_bulk([post_dto(), post_dto(quantity=-1)], expect=400)
    assert (refused.status, refused.successful, refused.failed) == ("FAILURE", 0, 2)
    assert all(r.tradeOrder is None for r in refused.results)


async def test_executions_are_created_changed_filled_and_deleted(
    trade: OriginalTradeClient,
) -> None:
    order = await trade.create_trade_order(post_dto())
    execution_post = {
        "executionTimestamp": "2024-06-02T09:30:00Z",
        "executionStatusId": 1,
        "blotterId": 2,
        "tradeTypeId": 1,
        "tradeOrderId": order.id,
        "destinationId": 3,
        "quantityOrdered": Decimal("50"),
        "quantityPlaced": Decimal("50"),
        "quantityFilled": Decimal("0"),
        "limitPrice": Decimal("12.345"),
        "executionServiceId": None,
    }
    created = await trade.create_execution(execution_post)
    assert (created.quantityOrdered, created.limitPrice) == (50, Decimal("12.35"))
    assert created.destination.abbreviation == "JPM"
    put = {**execution_post, "id": created.id, "destinationId": 1, "version": created.version}
    updated = await trade.update_execution(created.id, put)
    assert (updated.destination.abbreviation, updated.version) == ("ML", created.version + 1)
    fill = {"executionStatus": "PART", "quantityFilled": Decimal("20"), "version": updated.version}
    filled = await trade.fill_execution(created.id, fill)
    assert (filled.executionStatus.abbreviation, filled.quantityFilled) == ("PART", 20)
    await trade.delete_execution(created.id, filled.version)
    await trade.execution_missing(created.id)
    listed = {e.id for e in await trade.executions()}
    assert 1 in listed and created.id not in listed


async def test_submissions_reach_the_execution_service(
    trade: OriginalTradeClient, execution: OriginalExecutionClient
) -> None:
    order = await trade.create_trade_order(post_dto())
    sent = await trade.submit_trade_order(order.id, Decimal("100.25"), 2)
    assert sent.executionServiceId is not None and sent.executionServiceId > 3
    assert (sent.quantityOrdered, sent.quantityPlaced) == (Decimal("100.25"), Decimal("100.25"))
    there = await execution.execution(sent.executionServiceId)
    assert (there.tradeServiceExecutionId, there.destination) == (sent.id, "RBC")
    assert there.quantity == Decimal("100.25")

    held = await trade.submit_trade_order(order.id, Decimal("50"), 1, no_execute=True)
    assert held.executionServiceId is None
    submitted = await trade.submit_execution(held.id)
    assert submitted.executionServiceId is not None

    # The original's half-sent order 1 (40 of 100.5) gets its remaining 60.5.
    batch = await trade.submit_batch(
        [
            {"tradeOrderId": 1, "quantity": Decimal("60.5"), "destinationId": 1},
            {"tradeOrderId": order.id, "quantity": Decimal("100.25"), "destinationId": 3},
        ]
    )
    assert (batch.status, batch.successful, batch.failed) == ("SUCCESS", 2, 0)
    assert [r.tradeOrderId for r in batch.results] == [1, order.id]
    assert all(r.execution and r.execution.executionServiceId for r in batch.results)
    assert (await trade.trade_order(1)).submitted is True
    again = await trade.submit_batch([{"tradeOrderId": 1, "quantity": 1, "destinationId": 1}])
    assert (again.status, again.results[0].status) == ("FAILURE", "FAILURE")


async def test_v2_lists_page_filter_and_sort(trade: OriginalTradeClient) -> None:
    page = await trade.trade_orders_v2(orderType="SELL,BUY", sort="orderId", limit=1)
    assert [o.orderId for o in page.tradeOrders] == [501]
    assert page.pagination.hasNext and page.pagination.totalElements >= 2
    (other,) = (await trade.trade_orders_v2(orderId=502)).tradeOrders
    assert other.portfolio.portfolioId == "5f47ac10b8e5a5f2c9d3e1a0"
    assert other.security.securityId == "5f47ac10b8e5a5f2c9d3e1b1"
    executions = await trade.executions_v2(tradeOrderId=1, sort="id")
    assert executions.executions[0].id == 1
    assert executions.executions[0].tradeOrder.orderId == 501
    assert executions.executions[0].executionServiceId == 9001


async def test_the_execution_services_client_is_served(execution: OriginalExecutionClient) -> None:
    post = {
        "executionStatus": "NEW",
        "tradeType": "SELL",
        "destination": "ML",
        "securityId": "5f47ac10b8e5a5f2c9d3e1b1",
        "quantity": Decimal("9999999999.99999999"),
        "limitPrice": Decimal("0.00000001"),
        "tradeServiceExecutionId": None,
        "version": 1,
    }
    created = await execution.create(post)
    assert created.quantity == Decimal("9999999999.99999999")
    assert (await execution.execution(created.id)).limitPrice == Decimal("0.00000001")
    put = {
        "quantityFilled": Decimal("10"),
        "averagePrice": Decimal("1.5"),
        "version": created.version,
    }
    filled = await execution.update(created.id, put)
    assert (filled.executionStatus, filled.quantityFilled, filled.averagePrice) == (
        "PART",
        10,
        Decimal("1.5"),
    )

    all_ok = await execution.batch([post, post], expect=201)
    assert (all_ok.status, all_ok.successful) == ("SUCCESS", 2)
    mixed = await execution.batch([post, {**post, "quantity": -1}], expect=207)
    assert (mixed.status, mixed.failed, mixed.results[1].execution) == ("PARTIAL_SUCCESS", 1, None)
    failed = await execution.batch([{**post, "tradeType": "HOLD"}], expect=400)
    assert (failed.status, failed.results[0].status) == ("FAILED", "FAILED")

    page = await execution.executions(limit=2, offset=0)
    assert len(page.content) == 2 and page.pagination.hasNext
    assert page.pagination.totalElements >= 6
    part = await execution.executions(executionStatus="PART", sortBy="id")
    assert {3, created.id} <= {e.id for e in part.content}
