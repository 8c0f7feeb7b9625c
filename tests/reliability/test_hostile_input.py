"""Hostile input, table-driven, against the execution and trade services on SQLite and
PostgreSQL: no answer is a 5xx, and a refused request stores nothing.

Each case is raw bytes on the wire (so NUL, lone surrogates, ``1e400`` and 2^64 reach
the service exactly as an attacker would send them). The doctoral API takes no
user-supplied bodies but a token and a file name: see ``test_auth_attacks``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.execution.factories import item
from tests.execution.harness import Harness
from tests.trade.factories import order_payload

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

Case = tuple[str, str, bytes | None, dict[str, str]]
JSON = {"content-type": "application/json"}
STRINGS = ["\u0000", "M\u0000L", "\ud800", "\udfff", "x" * 100_000, "", " ", "'; DROP TABLE x;--"]
NUMBERS: list[Any] = [
    "1e400", "-1e400", "1e-400", "99999999999999999999999999.5", "-5", "0", "-0.000000001",
    "18446744073709551616", "-9223372036854775809", "true", "\"12\"", "[]", "{}", "null",
]  # fmt: skip
SQLISH = [
    "id; DROP TABLE execution", "id' OR '1'='1", "1) UNION SELECT * FROM outbox--",
    "pg_sleep(10)", "id,,", ",", "-", "-id,-id", "\u0000", "\ud800", "x" * 501,
]  # fmt: skip


def _raw(value: Any) -> bytes:
    return json.dumps(value).encode()


def _with_number(body: dict[str, Any], field: str, number: str) -> bytes:
    marker = "__NUMBER__"
    return _raw({**body, field: marker}).replace(f'"{marker}"'.encode(), number.encode())


def _nested(depth: int) -> bytes:
    return b'{"executions": ' + b"[" * depth + b"]" * depth + b"}"


def execution_cases() -> list[Case]:
    cases: list[Case] = []
    for field in ("executionStatus", "tradeType", "destination", "securityId"):
        for text in STRINGS:
            cases.append(("POST", "/api/v1/executions", _raw(item(**{field: text})), JSON))
            body = {"executions": [item(), item(**{field: text})]}
            cases.append(("POST", "/api/v1/executions/batch", _raw(body), JSON))
    for field in ("quantity", "limitPrice", "tradeServiceExecutionId", "version"):
        for number in NUMBERS:
            cases.append(("POST", "/api/v1/executions", _with_number(item(), field, number), JSON))
    for field in ("quantityFilled", "averagePrice", "version"):
        for number in NUMBERS:
            fill = {"quantityFilled": 1, "averagePrice": 1, "version": 1}
            cases.append(("PUT", "/api/v1/execution/1", _with_number(fill, field, number), JSON))
    for depth in (100, 10_000, 200_000):
        cases.append(("POST", "/api/v1/executions/batch", _nested(depth), JSON))
        cases.append(("POST", "/api/v1/executions", b"[" * depth + b"]" * depth, JSON))
    big = _raw({"executions": [item(destination="D" * 1000) for _ in range(11_000)]})
    cases.append(("POST", "/api/v1/executions/batch", big, JSON))  # > 10 MiB
    cases.append(("POST", "/api/v1/executions/batch", _raw({"executions": [item()] * 101}), JSON))
    for body in ({"executions": {}}, {"executions": "x"}, {"executions": None}, [], "x", 1, {}):
        cases.append(("POST", "/api/v1/executions/batch", _raw(body), JSON))
    cases.append(("POST", "/api/v1/executions", b"\xff\xfe\x00", JSON))
    cases.append(("POST", "/api/v1/executions", _raw(item()), {"content-type": "text/plain"}))
    for value in SQLISH:
        for param in ("sortBy", "executionStatus", "tradeType", "destination", "ticker"):
            query = f"{param}={quote(value, safe='', errors='surrogatepass')}"
            cases.append(("GET", f"/api/v1/executions?{query}", None, {}))
    for bad in ("9223372036854775808", "18446744073709551616", "-1", "0", "1e3", "%00", "abc"):
        cases.append(("GET", f"/api/v1/execution/{bad}", None, {}))
        fill = _raw({"quantityFilled": 1, "version": 1})
        cases.append(("PUT", f"/api/v1/execution/{bad}", fill, JSON))
    for query in ("offset=-1", "offset=99999999999999999999", "limit=0", "limit=1e9"):
        cases.append(("GET", f"/api/v1/executions?{query}", None, {}))
    return cases


def trade_cases() -> list[Case]:
    cases: list[Case] = []
    for field in ("portfolioId", "securityId", "orderType"):
        for text in STRINGS:
            cases.append(
                ("POST", "/api/v1/tradeOrders", _raw(order_payload(**{field: text})), JSON)
            )
    for field in ("quantity", "limitPrice", "orderId", "blotterId"):
        for number in NUMBERS:
            body = _with_number(order_payload(), field, number)
            cases.append(("POST", "/api/v1/tradeOrders", body, JSON))
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "\u0000", "yesterday"):
        cases.append(
            ("POST", "/api/v1/tradeOrders", _raw(order_payload(tradeTimestamp=stamp)), JSON)
        )
    for depth in (100, 10_000, 200_000):
        cases.append(("POST", "/api/v1/tradeOrders", b"[" * depth + b"]" * depth, JSON))
    cases.append(("POST", "/api/v1/tradeOrders", b"{" + b" " * (11 * 1024 * 1024) + b"}", JSON))
    too_many = {"submissions": [{"tradeOrderId": i, "quantity": 1, "destinationId": 1}
                                for i in range(1, 102)]}  # fmt: skip
    cases.append(("POST", "/api/v1/tradeOrders/batch/submit", _raw(too_many), JSON))
    for bad in ("9223372036854775808", "18446744073709551616", "-1", "0", "abc", "%00"):
        cases.append(("GET", f"/api/v1/tradeOrders/{bad}", None, {}))
        cases.append(("GET", f"/api/v1/executions/{bad}", None, {}))
        cases.append(("POST", f"/api/v1/tradeOrders/{bad}/submit", _raw({"quantity": 1,
                      "destinationId": 1}), JSON))  # fmt: skip
    for value in SQLISH:
        for param in ("portfolioId", "securityId", "orderType", "sortBy", "limit", "offset"):
            query = f"{param}={quote(value, safe='', errors='surrogatepass')}"
            cases.append(("GET", f"/api/v1/tradeOrders?{query}", None, {}))
    fill = {"executionStatus": "FULL", "quantityFilled": 1, "version": 1}
    for field in ("quantityFilled", "version", "averagePrice"):
        for number in NUMBERS:
            body = _with_number(fill, field, number)
            cases.append(("PUT", "/api/v1/executions/1/fill", body, JSON))
    return cases


async def _execution_state(app: Harness) -> tuple[int, int]:
    return await app.count(), int(await app.scalar("SELECT count(*) FROM outbox"))


async def _run(
    client: httpx.AsyncClient, cases: list[Case], state: Callable[[], Awaitable[Any]]
) -> Counter[int]:
    statuses: Counter[int] = Counter()
    for method, path, content, headers in cases:
        before = await state()
        r = await client.request(method, path, content=content, headers=headers)
        statuses[r.status_code] += 1
        assert r.status_code < 500, (method, path, (content or b"")[:200], r.text[:500])
        if r.status_code >= 400:
            assert await state() == before, (method, path, (content or b"")[:200])
    return statuses


async def _total(client: httpx.AsyncClient, path: str) -> int:
    r = await client.get(path, params={"limit": 1})
    assert r.status_code == 200, r.text
    body: Any = r.json()
    return int(body["pagination"]["totalElements"]) if isinstance(body, dict) else len(body)


async def test_execution_service_survives_the_hostile_table(execution: Harness) -> None:
    cases = execution_cases()
    statuses = await _run(execution.client, cases, lambda: _execution_state(execution))
    print(f"FIGURE hostile execution cases={len(cases)} statuses={dict(sorted(statuses.items()))}")
    assert statuses[201] + statuses[207] > 0  # the table holds acceptable items too


async def test_trade_service_survives_the_hostile_table(trade: httpx.AsyncClient) -> None:
    async def state() -> tuple[int, int]:
        return await _total(trade, "/api/v1/tradeOrders"), await _total(trade, "/api/v1/executions")

    cases = trade_cases()
    statuses = await _run(trade, cases, state)
    print(f"FIGURE hostile trade cases={len(cases)} statuses={dict(sorted(statuses.items()))}")


async def test_an_idempotency_key_reused_with_another_body_is_refused_and_stores_nothing(
    execution: Harness,
) -> None:
    key = {"Idempotency-Key": "reliability-reused-key"}
    first = await execution.post("/api/v1/executions/batch", {"executions": [item()]}, headers=key)
    assert first.status_code == 201
    before = await _execution_state(execution)
    for body in ({"executions": [item()]}, {"executions": [item(), item()]}):
        r = await execution.post("/api/v1/executions/batch", body, headers=key)
        assert r.status_code == 422, r.text
    assert await _execution_state(execution) == before
    again = await execution.post(
        "/api/v1/executions/batch", json.loads(first.request.content), headers=key
    )
    assert again.status_code == 201
    assert again.json() == first.json()  # the stored answer, not a second create
    assert await _execution_state(execution) == before


async def test_unknown_fields_are_ignored_not_stored_or_echoed(execution: Harness) -> None:
    r = await execution.post("/api/v1/executions", item(isAdmin=True, id=1, __proto__={}))
    assert r.status_code == 201, r.text
    assert "isAdmin" not in r.json() and "__proto__" not in r.json()
