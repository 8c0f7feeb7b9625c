"""The execution-service client's handling of the batch protocol's answers and failures."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.trade.factories import (
    ScriptedExecutionService,
    batch_body,
    batch_response,
    trade_settings,
)
from tranche.trade.client import ExecutionServiceClient, is_transient

POSTS = [
    {
        "executionStatus": "NEW",
        "tradeType": "BUY",
        "destination": "ML",
        "securityId": f"S{i}",
        "quantity": 10 + i,
        "limitPrice": None,
        "tradeServiceExecutionId": i + 1,
        "version": 1,
    }
    for i in range(3)
]


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def client_for(
    service: ScriptedExecutionService | httpx.AsyncBaseTransport,
    sleeps: Sleeps | None = None,
    **settings: Any,
) -> ExecutionServiceClient:
    transport = service.transport() if isinstance(service, ScriptedExecutionService) else service
    http = httpx.AsyncClient(transport=transport, base_url="http://execution.test")
    return ExecutionServiceClient(http, trade_settings("sqlite://", **settings), sleeps or Sleeps())


def all_ok(service: ScriptedExecutionService, items: list[dict[str, Any]]) -> httpx.Response:
    return batch_response([service.result(i, item) for i, item in enumerate(items)])


async def test_503_twice_then_201_resends_the_same_bytes_under_the_same_key() -> None:
    calls = 0

    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return httpx.Response(503, json={"message": "busy"})
        return all_ok(service, items)

    service = ScriptedExecutionService(handler)
    sleeps = Sleeps()
    reply = await client_for(
        service,
        sleeps,
        execution_service_retry_initial_delay_ms=1000,
        execution_service_retry_max_delay_ms=30000,
    ).submit_batch(POSTS, "key-1")

    assert reply.outcome == "201" and reply.attempts == 3
    assert all(i.ok for i in reply.items)
    assert service.keys() == ["key-1"] * 3
    assert len({r.content for r in service.requests}) == 1
    assert sleeps.delays == [1.0, 2.0]


async def test_timeout_after_commit_gets_the_stored_answer_not_new_rows() -> None:
    """The first answer is lost after the service stored it; the resend replays it."""
    stored: dict[str, httpx.Response] = {}
    created = 0

    class LosesFirstAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal created
            key = request.headers["Idempotency-Key"]
            first = key not in stored
            if first:
                items = json.loads(request.content)["executions"]
                created += len(items)
                stored[key] = batch_response(
                    [
                        {
                            "requestIndex": i,
                            "status": "SUCCESS",
                            "message": None,
                            "execution": {"id": 900 + i},
                        }
                        for i in range(len(items))
                    ]
                )
                raise httpx.ReadTimeout("read timed out", request=request)
            return httpx.Response(stored[key].status_code, content=stored[key].content)

    reply = await client_for(LosesFirstAnswer()).submit_batch(POSTS, "key-t")

    assert created == 3
    assert [i.execution_service_id for i in reply.items] == [900, 901, 902]
    assert reply.attempts == 2


async def test_400_fails_every_item_and_is_not_retried() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        results = [
            service.result(i, it, ok=False, message=f"securityId of item {i} is bad")
            for i, it in enumerate(items)
        ]
        return httpx.Response(400, json=batch_body(results))

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "k")

    assert len(service.requests) == 1
    assert reply.outcome == "400"
    assert [i.message for i in reply.items] == [f"securityId of item {i} is bad" for i in range(3)]
    assert not any(i.ok for i in reply.items)


async def test_400_without_a_batch_body_names_the_error() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(400, json={"message": "Maximum 100 executions allowed per batch"})

    reply = await client_for(ScriptedExecutionService(handler)).submit_batch(POSTS, "k")
    assert {i.message for i in reply.items} == {
        "Client error 400: Maximum 100 executions allowed per batch"
    }


async def test_207_maps_results_by_request_index_not_position() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        results = [
            service.result(2, items[2]),
            service.result(0, items[0], ok=False, message="quantity must be greater than 0"),
            service.result(1, items[1], ok=False, message="Database error: connection reset"),
        ]
        return httpx.Response(207, json=batch_body(results))

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "k")

    assert [i.ok for i in reply.items] == [False, False, True]
    assert reply.items[0].transient is False
    assert reply.items[1].transient is True
    assert reply.items[2].execution_service_id is not None


async def test_409_on_a_concurrent_duplicate_is_waited_out_with_the_same_key() -> None:
    calls = 0

    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(
                409, json={"message": "A request with this Idempotency-Key is in progress"}
            )
        return all_ok(service, items)

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "dup")
    assert reply.outcome == "201"
    assert service.keys() == ["dup", "dup"]


async def test_other_4xx_fail_without_retry() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(422, json={"message": "Idempotency-Key reused with a different body"})

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "k")
    assert len(service.requests) == 1
    assert reply.outcome == "4xx"
    assert (
        reply.items[0].message == "Client error 422: Idempotency-Key reused with a different body"
    )


async def test_attempts_run_out_as_retry_exhausted() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    service = ScriptedExecutionService(handler)
    sleeps = Sleeps()
    reply = await client_for(
        service,
        sleeps,
        execution_service_retry_max_attempts=5,
        execution_service_retry_initial_delay_ms=1000,
        execution_service_retry_max_delay_ms=5000,
    ).submit_batch(POSTS, "k")

    assert len(service.requests) == 5
    assert reply.exhausted and reply.attempts == 5
    assert sleeps.delays == [1.0, 2.0, 4.0, 5.0]
    assert all(i.message and i.message.startswith("RETRY_EXHAUSTED") for i in reply.items)
    assert "ConnectError" in (reply.items[0].message or "")


async def test_a_2xx_it_cannot_read_fails_the_items_without_resending() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(201, text="<html>ok</html>")

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "k")
    assert reply.outcome == "unreadable" and len(service.requests) == 1
    assert not any(i.ok for i in reply.items)


async def test_a_missing_result_fails_only_that_item() -> None:
    async def handler(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(
            207, json=batch_body([service.result(0, items[0]), service.result(2, items[2])])
        )

    service = ScriptedExecutionService(handler)
    reply = await client_for(service).submit_batch(POSTS, "k")
    assert [i.ok for i in reply.items] == [True, False, True]
    assert reply.items[1].message == "No result for request index 1"


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("Read timeout talking to the database", True),
        ("Connection reset by peer", True),
        ("503 Service Unavailable", True),
        ("Internal Server Error", True),
        ("temporary failure", True),
        ("tradeType must be one of BUY, SELL", False),
        ("quantity must be greater than 0", False),
        (None, False),
    ],
)
def test_which_item_failures_are_worth_a_resend(message: str | None, transient: bool) -> None:
    assert is_transient(message) is transient
