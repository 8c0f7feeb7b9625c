"""Properties of the batch endpoint over random mixes of valid and invalid items."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from tests.execution.factories import mixed_batches
from tests.execution.harness import Harness
from tests.fixtures.waiting import consume
from tranche.core.outbox import outbox_table
from tranche.execution.models import execution_table as t
from tranche.execution.schemas import parse_json

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

#: Every id this module created, to check the topic once at the end.
CREATED: dict[str, list[int]] = {}


def _tsid(value: Any) -> int | None:
    return value.get("tradeServiceExecutionId") if isinstance(value, dict) else None


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=mixed_batches())
async def test_random_mixes(any_app: Harness, batch: list[tuple[bool, Any]]) -> None:
    items = [value for _, value in batch]
    valid = [ok for ok, _ in batch]
    r = await any_app.post("/api/v1/executions/batch", {"executions": items})
    body = parse_json(r.content)  # exact decimals, as the service wrote them

    expected = 201 if all(valid) else 400 if not any(valid) else 207
    assert r.status_code == expected, body
    assert body["totalRequested"] == len(items)
    assert body["successful"] + body["failed"] == body["totalRequested"]
    assert body["successful"] == sum(valid)
    assert [res["requestIndex"] for res in body["results"]] == list(range(len(items)))

    created_ids: list[int] = []
    for ok, value, res in zip(valid, items, body["results"], strict=True):
        if ok:
            assert res["status"] == "SUCCESS", res
            dto = res["execution"]
            assert dto["tradeServiceExecutionId"] == value["tradeServiceExecutionId"]
            assert dto["quantity"] == Decimal(value["quantity"])
            assert dto["tradeType"] == value["tradeType"]
            created_ids.append(dto["id"])
        else:
            assert res["status"] == "FAILED"
            assert res["execution"] is None
            assert res["message"]

    # Exactly the valid items are stored...
    tsids = [x for x in (_tsid(v) for v in items) if isinstance(x, int) and 0 <= x < 2**31]
    async with any_app.parts.db.sessions() as s:
        stored = (
            await s.execute(sa.select(t.c.id).where(t.c.trade_service_execution_id.in_(tsids)))
        ).scalars()
        assert sorted(stored) == sorted(created_ids)
        # ...and each has exactly one event in the outbox, keyed by its id.
        keys = (
            await s.execute(
                sa.select(outbox_table.c.key).where(
                    outbox_table.c.topic == any_app.topic,
                    outbox_table.c.key.in_([str(i) for i in created_ids]),
                )
            )
        ).scalars()
        assert sorted(keys) == sorted(str(i) for i in created_ids)
    CREATED.setdefault(any_app.topic, []).extend(created_ids)


async def test_every_created_execution_was_published_once(any_app: Harness) -> None:
    ids = CREATED.get(any_app.topic, [])
    assert ids, "the property test created nothing"
    bootstrap = any_app.parts.settings.kafka.bootstrap_servers or ""
    records = await consume(bootstrap, any_app.topic, len(ids))
    counts = Counter(int(r.key or b"0") for r in records)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1
