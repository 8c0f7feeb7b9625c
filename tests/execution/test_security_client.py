"""The security-service client against a stand-in that behaves like the deployed v2 service
(it ignores ``securityId`` and returns an unfiltered page, reference C3)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.execution.factories import item
from tests.execution.harness import running
from tranche.core.broker import EmbeddedBroker
from tranche.execution.clients.security import SecurityClient, SecurityServiceUnavailable

BASE = "http://security"


class FakeSecurityService:
    """v2 search (ticker exact, case-insensitive; securityId ignored), v1 by id."""

    def __init__(self, securities: dict[str, str]) -> None:
        self.securities = securities  # id -> ticker
        self.calls: list[httpx.Request] = []
        self.down = False

    def _entry(self, sid: str) -> dict[str, Any]:
        return {
            "securityId": sid,
            "ticker": self.securities[sid],
            "description": "x",
            "securityTypeId": "t",
            "version": 1,
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/api/v2/securities":
            ticker = request.url.params.get("ticker")
            limit = int(request.url.params.get("limit", "50"))
            ids = list(self.securities)
            if ticker is not None:
                ids = [i for i in ids if self.securities[i].upper() == ticker.upper()]
            page = [self._entry(i) for i in ids[:limit]]
            return httpx.Response(200, json={"securities": page, "pagination": {}})
        if path.startswith("/api/v1/security/"):
            sid = path.rsplit("/", 1)[1]
            if sid not in self.securities:
                return httpx.Response(404, json={"detail": "Security not found"})
            return httpx.Response(200, json=self._entry(sid))
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))

    def v2_id_calls(self) -> list[httpx.Request]:
        return [c for c in self.calls if "securityId" in c.url.params]

    def v1_calls(self) -> list[httpx.Request]:
        return [c for c in self.calls if c.url.path.startswith("/api/v1/")]


def sid(n: int) -> str:
    return f"{n:024x}"


@pytest.fixture
def service() -> FakeSecurityService:
    return FakeSecurityService({sid(i): f"T{i}" for i in range(200)})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(
    service: FakeSecurityService, clock: Clock, registry: CollectorRegistry
) -> AsyncIterator[SecurityClient]:
    http = service.client()
    yield SecurityClient(http, BASE, registry, negative_ttl_s=60, cooldown_s=10, clock=clock)
    await http.aclose()


async def test_tickers_are_matched_by_id_never_taken_from_the_first_element(
    client: SecurityClient, service: FakeSecurityService
) -> None:
    # The unfiltered first page holds ids 0..49; 150 and 199 are not on it.
    got = await client.tickers_for([sid(150), sid(3), sid(199)])
    assert got == {sid(150): "T150", sid(3): "T3", sid(199): "T199"}
    assert len(service.v2_id_calls()) == 1
    assert sorted(c.url.path for c in service.v1_calls()) == [
        f"/api/v1/security/{sid(150)}",
        f"/api/v1/security/{sid(199)}",
    ]


async def test_at_most_fifty_ids_a_call_and_a_warm_cache(
    client: SecurityClient, service: FakeSecurityService
) -> None:
    ids = [sid(i) for i in range(120)]
    got = await client.tickers_for(ids)
    assert got == {s: f"T{int(s, 16)}" for s in ids}
    batches = service.v2_id_calls()
    assert [len(c.url.params.get_list("securityId")) for c in batches] == [50, 50, 20]
    service.calls.clear()
    assert await client.tickers_for(ids) == got
    assert service.calls == []


async def test_unknown_ids_are_null_and_cached_briefly(
    client: SecurityClient, service: FakeSecurityService, clock: Clock
) -> None:
    assert await client.tickers_for(["nope"]) == {"nope": None}
    n = len(service.calls)
    assert await client.tickers_for(["nope"]) == {"nope": None}
    assert len(service.calls) == n
    clock.now += 61
    service.securities["nope"] = "NEW"
    assert await client.tickers_for(["nope"]) == {"nope": "NEW"}


async def test_a_dead_service_degrades_to_null_counts_it_and_cools_down(
    client: SecurityClient, service: FakeSecurityService, clock: Clock, registry: CollectorRegistry
) -> None:
    service.down = True
    assert await client.tickers_for([sid(1), sid(2)]) == {sid(1): None, sid(2): None}
    failed = registry.get_sample_value("execution_security_lookups_total", {"outcome": "failed"})
    assert failed == 2
    calls = len(service.calls)
    assert await client.tickers_for([sid(3)]) == {sid(3): None}
    assert len(service.calls) == calls  # cooling down: no call at all
    with pytest.raises(SecurityServiceUnavailable):
        await client.security_id_for("T5")
    service.down = False
    clock.now += 11
    assert await client.tickers_for([sid(3)]) == {sid(3): "T3"}


async def test_ticker_to_id_is_matched_case_insensitively(
    client: SecurityClient, service: FakeSecurityService
) -> None:
    assert await client.security_id_for("t150") == sid(150)
    assert await client.security_id_for("NOSUCH") is None
    calls = len(service.calls)
    assert await client.security_id_for("T150") == sid(150)
    assert len(service.calls) == calls


async def test_timeouts_degrade_too() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    c = SecurityClient(
        httpx.AsyncClient(transport=httpx.MockTransport(slow)), BASE, CollectorRegistry()
    )
    assert await c.tickers_for(["a"]) == {"a": None}


async def test_tickers_in_responses_and_the_ticker_filter(
    broker: EmbeddedBroker, tmp_path: Path, service: FakeSecurityService
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sec.db'}"
    async with running(
        url,
        broker.bootstrap_servers,
        tmp_path,
        http=service.client(),
        security_service_base_url=BASE,
    ) as app:
        a = (await app.post("/api/v1/executions", item(securityId=sid(150)))).json()
        b = (await app.post("/api/v1/executions", item(securityId=sid(7)))).json()
        assert a["ticker"] == a["security"]["ticker"] == "T150"
        batch = await app.post(
            "/api/v1/executions/batch", {"executions": [item(securityId=sid(7))]}
        )
        assert batch.json()["results"][0]["execution"]["ticker"] == "T7"
        page = (await app.client.get("/api/v1/executions", params={"ticker": "t7"})).json()
        assert {e["id"] for e in page["content"]} == {
            b["id"],
            batch.json()["results"][0]["execution"]["id"],
        }
        assert all(e["ticker"] == "T7" for e in page["content"])
        none = (await app.client.get("/api/v1/executions", params={"ticker": "ZZZ"})).json()
        assert none["content"] == []
        assert none["pagination"]["totalElements"] == 0
        service.down = True
        got = await app.client.get(f"/api/v1/execution/{a['id']}")
        assert got.json()["ticker"] == "T150"  # cached
        down = await app.client.get("/api/v1/executions", params={"ticker": "NEWONE"})
        assert down.status_code == 503
        assert "NEWONE" in down.json()["message"]
        fresh = await app.post("/api/v1/executions", item(securityId=sid(180)))
        assert fresh.status_code == 201
        assert fresh.json()["ticker"] is None


async def test_after_the_cooldown_one_probe_goes_out_and_a_failed_one_reopens(
    service: FakeSecurityService, clock: Clock
) -> None:
    """The shared circuit breaker: while the probe is out, other lookups make no call; a
    probe that fails opens the circuit for another cooldown."""
    gate = asyncio.Event()
    probing = asyncio.Event()

    async def handle(request: httpx.Request) -> httpx.Response:
        probing.set()
        await gate.wait()
        return service.handle(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    client = SecurityClient(http, BASE, CollectorRegistry(), cooldown_s=10, clock=clock)
    try:
        service.down = True
        gate.set()
        assert await client.tickers_for([sid(1)]) == {sid(1): None}
        clock.now += 11
        gate.clear()
        probing.clear()
        probe = asyncio.create_task(client.tickers_for([sid(2)]))
        await asyncio.wait_for(probing.wait(), 10)
        calls = len(service.calls)
        # A second call would block on the gate: the lookup answers at once without one.
        assert await asyncio.wait_for(client.tickers_for([sid(3)]), 5) == {sid(3): None}
        gate.set()
        assert await probe == {sid(2): None}
        assert len(service.calls) == calls + 1
        assert await client.tickers_for([sid(4)]) == {sid(4): None}
        assert len(service.calls) == calls + 1  # open again: no call at all
        service.down = False
        clock.now += 11
        assert await client.tickers_for([sid(4)]) == {sid(4): "T4"}
    finally:
        await http.aclose()
