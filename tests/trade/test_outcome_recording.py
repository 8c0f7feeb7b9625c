"""Recording a submission's outcome is all or nothing.

When the execution service's answer cannot be stored (an id beyond int4, not an
integer, given to two executions) or the record transaction fails, the claim is
released and the next submission resends the same batch under the same
Idempotency-Key, so the execution service replays instead of creating twice.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.trade.factories import (
    ScriptedExecutionService,
    batch_response,
    create_executions,
    create_orders,
    trade_app,
)
from tranche.trade import submission

pytestmark = pytest.mark.postgres


class FirstAnswerUnusable:
    """A fake execution service whose first answer carries ``bad_ids``; later answers under
    the same key carry fresh valid ids (the replay of a service that stored them right)."""

    def __init__(self, bad_ids: list[Any]) -> None:
        self.bad_ids = bad_ids
        self.service = ScriptedExecutionService(self.handle)

    async def handle(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        results = [self.service.result(i, item) for i, item in enumerate(items)]
        if len(self.service.requests) == 1:
            for result, bad in zip(results, self.bad_ids, strict=False):
                result["execution"]["id"] = bad
        return batch_response(results)


@pytest.mark.parametrize("bad", [2**31, 2**40, "7001", True, 0, None])
async def test_an_unusable_id_releases_the_claim_and_the_retry_reuses_the_key(
    trade_pg_url: str, bad: Any
) -> None:
    fake = FirstAnswerUnusable([bad])
    async with trade_app(trade_pg_url, fake.service.transport()) as client:
        (execution,) = await create_executions(client, 1)
        path = f"/api/v1/execution/{execution['id']}/submit"
        first = await client.post(path)
        assert first.status_code == 502, first.text
        assert "same Idempotency-Key" in first.json()["message"]
        still = (await client.get(f"/api/v1/executions/{execution['id']}")).json()
        assert still["executionStatus"]["abbreviation"] == "NEW"
        assert still["executionServiceId"] is None
        # Not left claimed: the retry is sent at once, under the first key.
        retry = await client.post(path)
        assert retry.status_code == 200, retry.text
        assert retry.json()["executionStatus"]["abbreviation"] == "SENT"
        assert isinstance(retry.json()["executionServiceId"], int)
    first_key, retry_key = fake.service.keys()
    assert retry_key == first_key
    assert fake.service.requests[0].content == fake.service.requests[1].content


async def test_two_executions_answered_with_one_id_are_both_resent_under_the_key(
    trade_pg_url: str,
) -> None:
    fake = FirstAnswerUnusable([881_001, 881_001])
    async with trade_app(trade_pg_url, fake.service.transport()) as client:
        orders = await create_orders(client, 2, quantity=10)
        batch = {
            "submissions": [
                {"tradeOrderId": o["id"], "quantity": 10, "destinationId": 1} for o in orders
            ]
        }
        first = (await client.post("/api/v1/tradeOrders/batch/submit", json=batch)).json()
        assert first["status"] == "FAILURE"
        assert all("same Idempotency-Key" in r["message"] for r in first["results"])
        executions = (await client.get("/api/v1/executions")).json()
        mine = {o["id"] for o in orders}
        kept = sorted(e["id"] for e in executions if e["tradeOrder"]["id"] in mine)
        assert len(kept) == 2  # not deleted: the execution service may hold them
        for order in orders:  # and their quantities stay reserved
            assert (await client.get(f"/api/v1/tradeOrders/{order['id']}")).json()[
                "quantitySent"
            ] == 10
        # Resubmitting one of them resends the whole batch under its key.
        retry = await client.post(f"/api/v1/execution/{kept[0]}/submit")
        assert retry.status_code == 200, retry.text
        both = [(await client.get(f"/api/v1/executions/{i}")).json() for i in kept]
        assert [e["executionStatus"]["abbreviation"] for e in both] == ["SENT", "SENT"]
        assert len({e["executionServiceId"] for e in both}) == 2
    assert fake.service.keys()[0] == fake.service.keys()[1]
    assert fake.service.sizes() == [2, 2]


async def test_a_failing_record_transaction_releases_the_claim(
    trade_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = FirstAnswerUnusable([]).service
    real_mark_sent = submission.mark_sent
    failures = [RuntimeError("disk full")]

    async def mark_sent_failing_once(session: Any, sent: Any) -> None:
        if failures and sent:
            raise failures.pop()
        await real_mark_sent(session, sent)

    monkeypatch.setattr(submission, "mark_sent", mark_sent_failing_once)
    async with trade_app(trade_pg_url, service.transport()) as client:
        (execution,) = await create_executions(client, 1)
        path = f"/api/v1/execution/{execution['id']}/submit"
        first = await client.post(path)
        assert first.status_code == 502, first.text
        assert "could not be recorded" in first.json()["message"]
        retry = await client.post(path)
        assert retry.status_code == 200, retry.text
        assert retry.json()["executionStatus"]["abbreviation"] == "SENT"
    assert service.keys()[0] == service.keys()[1]


async def test_an_id_another_execution_already_holds_is_not_stored_twice(
    trade_pg_url: str,
) -> None:
    """A confused execution service answers a later submission with an id the trade
    service already stored on an earlier execution: the earlier one keeps it, the later
    one is released with its key kept, and its retry (a replay with a fresh id) sticks."""
    answers: list[int | None] = []

    async def handle(request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        results = [service.result(i, item) for i, item in enumerate(items)]
        if len(service.requests) == 2:  # the second submission's first answer
            results[0]["execution"]["id"] = answers[0]
        answers.append(results[0]["execution"]["id"])
        return batch_response(results)

    service = ScriptedExecutionService(handle)
    async with trade_app(trade_pg_url, service.transport()) as client:
        earlier, later = await create_executions(client, 2)
        sent = await client.post(f"/api/v1/execution/{earlier['id']}/submit")
        assert sent.status_code == 200, sent.text
        held = sent.json()["executionServiceId"]
        path = f"/api/v1/execution/{later['id']}/submit"
        first = await client.post(path)
        assert first.status_code == 502, first.text
        assert f"already held by execution {earlier['id']}" in first.json()["message"]
        assert "same Idempotency-Key" in first.json()["message"]
        kept = (await client.get(f"/api/v1/executions/{earlier['id']}")).json()
        assert kept["executionServiceId"] == held
        refused = (await client.get(f"/api/v1/executions/{later['id']}")).json()
        assert (refused["executionStatus"]["abbreviation"], refused["executionServiceId"]) == (
            "NEW",
            None,
        )
        retry = await client.post(path)
        assert retry.status_code == 200, retry.text
        assert retry.json()["executionServiceId"] not in (None, held)
    assert service.keys()[1] == service.keys()[2] != service.keys()[0]
    assert service.requests[1].content == service.requests[2].content
