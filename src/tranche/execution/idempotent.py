"""Running a create request under its ``Idempotency-Key`` (the store is in ``tranche.core``).

The work receives the checkpoint of an earlier attempt that died half-way (or None)
and a ``checkpoint`` function to call inside each of its transactions; its answer is
stored for replay. Outcomes: first time → run and store; same key, same body →
the stored answer with ``Idempotent-Replayed: true`` and nothing written; same key,
other body → 422; a duplicate while the first still runs → waits, then 409.

The store keeps an answer's status and body only; headers that follow from them (the
``Location`` of a created execution) are derived again on replay by ``headers_of``, so
a replay is the first answer header for header, plus ``Idempotent-Replayed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.errors import ApiError
from tranche.core.idempotency import (
    IdempotencyInProgress,
    IdempotencyKeyReused,
    IdempotencyLeaseLost,
    IdempotencyStore,
    fingerprint,
    validate_key,
)
from tranche.core.logging import get_logger
from tranche.execution.bulk_create import Checkpoint
from tranche.execution.metrics import ExecutionMetrics

__all__ = [
    "REPLAY_HEADER",
    "Checkpoint",
    "HeadersOf",
    "Rendered",
    "Work",
    "request_fingerprint",
    "run_idempotent",
]

REPLAY_HEADER = "Idempotent-Replayed"
log = get_logger(__name__)


@dataclass
class Rendered:
    """A finished answer: status, JSON body bytes, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


Work = Callable[[dict[str, Any] | None, Checkpoint | None], Awaitable[Rendered]]
#: The headers a stored answer (status, body) carries, recomputed on replay.
HeadersOf = Callable[[int, bytes], dict[str, str]]


def _canonical(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value.normalize(), "f"))
    raise TypeError(type(value).__name__)


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """Same JSON (any key order, ``1`` = ``1.0``) → same fingerprint."""
    try:
        canonical = orjson.dumps(body, default=_canonical, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # e.g. an integer orjson cannot hold: fall back to the exact text
        canonical = json.dumps(body, sort_keys=True, default=str).encode()
    return fingerprint(method, path, canonical)


async def run_idempotent(
    store: IdempotencyStore,
    metrics: ExecutionMetrics,
    *,
    scope: str,
    key: str | None,
    request_fp: str,
    work: Work,
    headers_of: HeadersOf | None = None,
) -> Rendered:
    if key is None:
        return await work(None, None)
    problem = validate_key(key)
    if problem:
        raise ApiError(400, problem, validation_errors={"Idempotency-Key": problem})
    try:
        claim = await store.claim(scope, key, request_fp)
    except IdempotencyKeyReused as exc:
        metrics.idempotency.labels("reused").inc()
        raise ApiError(
            422,
            f"{exc}: send a new key for a new request",
            validation_errors={"Idempotency-Key": str(exc)},
        ) from None
    except IdempotencyInProgress as exc:
        metrics.idempotency.labels("conflict").inc()
        raise ApiError(409, f"{exc}; retry later", headers={"Retry-After": "1"}) from None
    if claim.replay is not None:
        metrics.idempotency.labels("replayed").inc()
        stored = claim.replay
        derived = headers_of(stored.status, stored.body) if headers_of else {}
        return Rendered(stored.status, stored.body, {**derived, REPLAY_HEADER: "true"})
    metrics.idempotency.labels("resumed" if claim.state else "new").inc()

    async def checkpoint(session: AsyncSession, state: dict[str, Any]) -> None:
        await store.checkpoint(session, claim, state)

    try:
        rendered = await work(claim.state, checkpoint)
    except IdempotencyLeaseLost:
        metrics.idempotency.labels("conflict").inc()
        raise ApiError(
            409, "Another request with this Idempotency-Key took over; retry to get its answer"
        ) from None
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(store.release(claim))
        raise
    try:
        await store.complete(claim, rendered.status, rendered.body)
    except IdempotencyLeaseLost:
        log.warning("idempotency_complete_after_takeover", scope=scope)
    return rendered
