"""Fills reach the trade service reliably: persisted, retried with backoff, not blocking
the PUT, surviving a restart. The trade service is a stand-in speaking its fill protocol
(reference B7): GET the execution for its version, PUT the fill, 409 on a stale version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from tests.execution.factories import item
from tests.execution.harness import Harness, running
from tests.fixtures.waiting import eventually
from tranche.core.broker import EmbeddedBroker
from tranche.execution.models import fill_callback_table as cb

TRADE = "http://trade"
FAST = {
    "trade_service_base_url": TRADE,
    "callback_initial_backoff_ms": 20,
    "callback_max_backoff_ms": 100,
    "callback_poll_interval_ms": 20,
}


class FakeTradeService:
    def __init__(self) -> None:
        self.versions: dict[int, int] = {}
        self.fills: list[dict[str, Any]] = []
        self.down = False
        self.errors: list[int] = []  # statuses to answer the next PUTs with
        self.bump_before_put = 0  # someone else changes the execution between GET and PUT

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        parts = request.url.path.strip("/").split("/")  # api v1 executions {id} [fill]
        tid = int(parts[3])
        if tid not in self.versions:
            return httpx.Response(404, json={"error": "Execution not found"})
        if request.method == "GET":
            return httpx.Response(200, json={"id": tid, "version": self.versions[tid]})
        if self.errors:
            return httpx.Response(self.errors.pop(0), json={"error": "injected"})
        if self.bump_before_put:
            self.bump_before_put -= 1
            self.versions[tid] += 1
        body = orjson.loads(request.content)
        if body["version"] != self.versions[tid]:
            return httpx.Response(409, json={"error": "Version mismatch."})
        self.versions[tid] += 1
        self.fills.append({"id": tid, **body})
        return httpx.Response(200, json={"id": tid, "version": self.versions[tid]})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


async def callbacks(app: Harness) -> list[dict[str, Any]]:
    async with app.parts.db.sessions() as s:
        rows = (await s.execute(sa.select(cb).order_by(cb.c.id))).mappings().all()
    return [dict(r) for r in rows]


async def create(app: Harness, tid: int, quantity: int = 100) -> dict[str, Any]:
    r = await app.post("/api/v1/executions", item(tradeServiceExecutionId=tid, quantity=quantity))
    assert r.status_code == 201
    return dict(r.json())


async def fill(app: Harness, dto: dict[str, Any], qty: float, price: float = 10.5) -> Any:
    r = await app.put(
        f"/api/v1/execution/{dto['id']}",
        {"quantityFilled": qty, "averagePrice": price, "version": dto["version"]},
    )
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def trade() -> FakeTradeService:
    return FakeTradeService()


async def test_fill_is_delivered_with_the_trade_side_version(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.versions[7] = 3
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        dto = await create(app, 7)
        await fill(app, dto, 40)
        await eventually(lambda: trade.fills)
        assert trade.fills == [
            {
                "id": 7,
                "executionStatus": "PART",
                "quantityFilled": 40,
                "averagePrice": 10.5,
                "version": 3,
            }
        ]
        await eventually(lambda: _status(app, "DELIVERED"))


async def _status(app: Harness, status: str) -> bool:
    rows = await callbacks(app)
    return bool(rows) and rows[-1]["status"] == status


async def test_down_trade_service_delays_but_never_blocks_or_loses(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.versions[8] = 1
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        dto = await create(app, 8)
        filled = await fill(app, dto, 100)
        assert filled["executionStatus"] == "FULL"
        await eventually(lambda: _attempts_at_least(app, 3))
        row = (await callbacks(app))[-1]
        assert row["status"] == "PENDING"
        assert "connection refused" in row["last_error"]
        trade.down = False
        await eventually(lambda: trade.fills)
        assert trade.fills[0]["executionStatus"] == "FULL"
        await eventually(lambda: _status(app, "DELIVERED"))


async def _attempts_at_least(app: Harness, n: int) -> bool:
    rows = await callbacks(app)
    return bool(rows) and rows[-1]["attempts"] >= n


async def test_conflict_is_reread_and_retried(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.versions[9] = 1
    trade.bump_before_put = 2
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        await fill(app, await create(app, 9), 10)
        await eventually(lambda: trade.fills)
        assert trade.fills[0]["version"] == 3
        await eventually(lambda: _status(app, "DELIVERED"))  # the fill lands before the row
        rows = await callbacks(app)
        assert rows[0]["attempts"] == 1  # within one delivery attempt


async def test_refused_fill_fails_at_once_and_5xx_is_retried(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        await fill(app, await create(app, 404), 10)  # unknown on the trade side
        await eventually(lambda: _status(app, "FAILED"))
        row = (await callbacks(app))[-1]
        assert row["attempts"] == 1
        assert "404" in row["last_error"]

        trade.versions[10] = 1
        trade.errors = [500, 503]
        await fill(app, await create(app, 10), 5)
        await eventually(lambda: trade.fills)
        await eventually(lambda: _status(app, "DELIVERED"))
        assert (await callbacks(app))[-1]["attempts"] == 3


async def test_attempts_are_bounded(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    settings = FAST | {"callback_max_attempts": 3}
    async with running(
        url, broker.bootstrap_servers, tmp_path, http=trade.client(), **settings
    ) as app:
        await fill(app, await create(app, 11), 5)
        await eventually(lambda: _status(app, "FAILED"))
        row = (await callbacks(app))[-1]
        assert row["attempts"] == 3
        assert row["last_error"].startswith("gave up")


async def test_pending_fills_survive_a_restart_and_only_the_latest_is_sent(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.versions[12] = 5
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        dto = await create(app, 12)
        first = await fill(app, dto, 30)
        await fill(app, first, 60, price=11)
        statuses = [r["status"] for r in await callbacks(app)]
        assert statuses == ["SUPERSEDED", "PENDING"]
    trade.down = False
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        await eventually(lambda: trade.fills)
        await eventually(lambda: _status(app, "DELIVERED"))
    assert len(trade.fills) == 1
    assert trade.fills[0]["quantityFilled"] == 60
    assert Decimal(str(trade.fills[0]["averagePrice"])) == Decimal(11)


async def test_no_trade_service_configured_means_no_callbacks(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path) as app:
        assert app.parts.deliverer is None
        await fill(app, await create(app, 13), 5)
        assert await callbacks(app) == []


async def test_a_newer_fill_waits_for_an_older_one_in_flight(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    """Another replica still delivering the older fill: the newer one must not overtake it
    (it would land first and be undone)."""
    trade.versions[14] = 1
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        first = await fill(app, await create(app, 14), 30)
        await eventually(lambda: _attempts_at_least(app, 1))
        deliverer = app.parts.deliverer
        assert deliverer is not None
        await deliverer.stop()  # from here on, rounds are driven by the test
        older = (await callbacks(app))[-1]["id"]
        async with app.parts.db.transaction() as s:  # leased by "another replica" for an hour
            await s.execute(
                cb.update()
                .where(cb.c.id == older)
                .values(locked_until=datetime.now(UTC) + timedelta(hours=1))
            )
        await fill(app, first, 60)
        trade.down = False
        assert await deliverer.run_once() == 0
        assert trade.fills == []
        async with app.parts.db.transaction() as s:  # the other replica finished
            await s.execute(cb.update().where(cb.c.id == older).values(locked_until=None))
        assert await deliverer.run_once() == 1
        assert [f["quantityFilled"] for f in trade.fills] == [60]


class _CommitThenFail:
    """The deliverer's database, whose next transaction commits and then raises: a COMMIT
    that took effect but whose answer was lost (or that a stop cancelled once sent)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self.fail_next = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._db.transaction() as s:
            yield s
        if self.fail_next:
            self.fail_next = False
            raise sa.exc.OperationalError("COMMIT", {}, Exception("answer lost"))


async def _lease(app: Harness) -> Any:
    return (await callbacks(app))[-1]["locked_until"]


async def _drive_until_a_fill(deliverer: Any, trade: FakeTradeService) -> list[Any]:
    async def one_round() -> list[Any]:
        await deliverer._round()
        return trade.fills

    return list(await eventually(one_round))


@pytest.mark.parametrize("then", ["next round", "stop"])
async def test_a_claim_whose_commit_answer_was_lost_gives_its_rows_back(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService, then: str
) -> None:
    """Found in CI: a stop cancelled the claim's COMMIT after it took effect; the rows were
    forgotten, kept their 60 s lease, and the restarted service sent nothing for a minute."""
    trade.versions[15] = 1
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        await fill(app, await create(app, 15), 30)
        deliverer = app.parts.deliverer
        assert deliverer is not None
        await deliverer.stop()  # from here on, rounds are driven by the test
        deliverer.db = _CommitThenFail(app.parts.db)
        await eventually(lambda: _claimable(app))
        with pytest.raises(sa.exc.OperationalError):
            await deliverer.run_once()
        assert await _lease(app) is not None  # the claim did commit
        trade.down = False
        if then == "stop":
            await deliverer.stop()
            assert await _lease(app) is None
        fills = await _drive_until_a_fill(deliverer, trade)
        assert [f["quantityFilled"] for f in fills] == [30]


async def test_giving_back_an_uncertain_claim_leaves_another_replicas_lease(
    broker: EmbeddedBroker, tmp_path: Path, trade: FakeTradeService
) -> None:
    trade.versions[16] = 1
    trade.down = True
    url = f"sqlite+aiosqlite:///{tmp_path / 'cb.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path, http=trade.client(), **FAST) as app:
        await fill(app, await create(app, 16), 30)
        deliverer = app.parts.deliverer
        assert deliverer is not None
        await deliverer.stop()
        deliverer.db = _CommitThenFail(app.parts.db)
        await eventually(lambda: _claimable(app))
        with pytest.raises(sa.exc.OperationalError):
            await deliverer.run_once()
        theirs = datetime.now(UTC) + timedelta(hours=1)
        async with app.parts.db.transaction() as s:  # our lease ran out; another replica's
            await s.execute(cb.update().values(locked_until=theirs))
        await deliverer.stop()
        assert await _lease(app) == theirs
        trade.down = False
        assert await deliverer.run_once() == 0
        assert trade.fills == []


async def _claimable(app: Harness) -> bool:
    row = (await callbacks(app))[-1]
    now = datetime.now(UTC)
    return bool(
        row["status"] == "PENDING" and row["locked_until"] is None and row["next_attempt_at"] <= now
    )
