"""Client of the execution service's batch API (``POST /api/v1/executions/batch``).

One call sends one batch and turns the answer into a result per item:

* 201 / 207 / other 2xx: each item by ``requestIndex``; ``SUCCESS`` (or the
  original's ``COMPLETED``) carries the execution service's id.
* 400: every item failed; the batch is not resent (per-item messages when the body has
  them, each still marked transient or not for the caller's individual retries).
* other 4xx: every item failed.
* 5xx, 409, 429, timeouts and connection errors: the whole batch is resent with
  exponential backoff (``core.resilience.Backoff``) **with the same Idempotency-Key and the same
  bytes**, so a resend after a lost response gets the stored response instead of
  creating the executions twice; a 409 means the execution service is still
  working on that key. When the attempts run out every item is RETRY_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState

from tranche.core.exactjson import dumps
from tranche.core.logging import get_logger
from tranche.trade.settings import TradeSettings

__all__ = [
    "BATCH_PATH",
    "IDEMPOTENCY_HEADER",
    "BatchReply",
    "ExecutionServiceClient",
    "ItemResult",
    "create_http_client",
    "is_transient",
]

log = get_logger(__name__)

BATCH_PATH = "/api/v1/executions/batch"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRY_STATUSES = frozenset({409, 429})
# Item messages the original treated as worth a resend (reference B6), plus deadlocks.
_TRANSIENT_WORDS = (
    "timeout",
    "timed out",
    "connection",
    "service unavailable",
    "internal server error",
    "temporar",
    "deadlock",
)

Sleep = Callable[[float], Awaitable[None]]


def is_transient(message: str | None) -> bool:
    text = (message or "").lower()
    return any(word in text for word in _TRANSIENT_WORDS)


@dataclass(frozen=True)
class ItemResult:
    """One execution's answer. ``unrecordable``: the execution service says it created the
    execution but its answer cannot be stored (an id that is not an int4, or one given to
    two executions), so the execution may exist there and must not be sent under a new key.
    """

    ok: bool
    execution_service_id: int | None = None
    message: str | None = None
    transient: bool = False
    unrecordable: bool = False


INT4_MAX = 2_147_483_647


def _valid_service_id(value: Any) -> bool:
    # bool is an int in Python; an id the execution column (integer) cannot hold is refused.
    return type(value) is int and 1 <= value <= INT4_MAX


@dataclass(frozen=True)
class BatchReply:
    """What became of one batch request. ``outcome`` labels the metrics."""

    outcome: str
    status_code: int | None
    items: list[ItemResult]
    attempts: int
    seconds: float

    @property
    def exhausted(self) -> bool:
        return self.outcome == "exhausted"


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        super().__init__(f"HTTP {response.status_code}: {_message_of(response)}")


def _message_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])[:300]
    return response.text[:300]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def create_http_client(
    settings: TradeSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The pooled HTTP client for the execution service (``transport`` is for tests)."""
    connect = settings.execution_service_connect_timeout_ms / 1000
    read = settings.execution_service_read_timeout_ms / 1000
    return httpx.AsyncClient(
        base_url=settings.execution_service_base_url,
        timeout=httpx.Timeout(read, connect=connect, pool=connect),
        limits=httpx.Limits(
            max_connections=settings.execution_service_max_connections,
            max_keepalive_connections=settings.execution_service_max_connections,
        ),
        transport=transport,
        headers={"User-Agent": "tranche-trade"},
    )


class ExecutionServiceClient:
    def __init__(
        self, http: httpx.AsyncClient, settings: TradeSettings, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._http = http
        self._settings = settings
        self._sleep = sleep

    def _retrying(self) -> AsyncRetrying:
        backoff = self._settings.execution_service_retry.backoff()
        return backoff.retrying(
            (httpx.TransportError, _RetryableStatus),
            sleep=self._sleep,
            before_sleep=self._log_retry,
        )

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "execution_batch_retry",
            attempt=state.attempt_number,
            error=_describe(exc) if exc else None,
            wait_s=round(state.next_action.sleep, 3) if state.next_action else None,
        )

    async def _post(self, body: bytes, key: str) -> httpx.Response:
        response = await self._http.post(
            BATCH_PATH,
            content=body,
            headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: key},
        )
        if response.status_code >= 500 or response.status_code in _RETRY_STATUSES:
            raise _RetryableStatus(response)
        return response

    async def submit_batch(self, posts: Sequence[dict[str, Any]], key: str) -> BatchReply:
        """Send ``posts`` as one batch under Idempotency-Key ``key``; never raises for HTTP."""
        body = dumps({"executions": list(posts)})  # decimals exact, never via float
        retrying = self._retrying()
        start = time.perf_counter()
        try:
            response: httpx.Response = await retrying(self._post, body, key)
        except (httpx.TransportError, _RetryableStatus) as exc:
            attempts = int(retrying.statistics.get("attempt_number", 1))
            message = (
                f"RETRY_EXHAUSTED: execution service unavailable after {attempts} attempts "
                f"({_describe(exc)})"
            )
            status = exc.status_code if isinstance(exc, _RetryableStatus) else None
            items = [ItemResult(False, message=message, transient=True) for _ in posts]
            reply = BatchReply("exhausted", status, items, attempts, time.perf_counter() - start)
        else:
            attempts = int(retrying.statistics.get("attempt_number", 1))
            reply = _read(response, len(posts), attempts, time.perf_counter() - start)
        log.info(
            "execution_batch_sent",
            size=len(posts),
            outcome=reply.outcome,
            status=reply.status_code,
            attempts=reply.attempts,
            ms=round(reply.seconds * 1000, 1),
        )
        return reply


def _per_item(body: Any, n: int) -> list[ItemResult] | None:
    """Items of a BatchExecutionResponseDTO by requestIndex, or None if it is not one."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return None
    by_index: dict[int, dict[str, Any]] = {}
    for result in body["results"]:
        if isinstance(result, dict) and type(result.get("requestIndex")) is int:
            by_index[result["requestIndex"]] = result
    items: list[ItemResult] = []
    for index in range(n):
        result = by_index.get(index)
        if result is None:
            items.append(ItemResult(False, message=f"No result for request index {index}"))
            continue
        execution = result.get("execution")
        service_id = execution.get("id") if isinstance(execution, dict) else None
        if result.get("status") in ("SUCCESS", "COMPLETED"):
            if _valid_service_id(service_id):
                items.append(ItemResult(True, execution_service_id=service_id))
            else:
                message = f"Execution service answered an invalid execution id {service_id!r}"
                items.append(ItemResult(False, message=message, unrecordable=True))
            continue
        message = str(result.get("message") or "Execution service reported a failure")
        items.append(ItemResult(False, message=message, transient=is_transient(message)))
    return _refuse_shared_ids(items)


def _refuse_shared_ids(items: list[ItemResult]) -> list[ItemResult]:
    """An id the answer gives to two executions cannot be stored for either."""
    counts: dict[int, int] = {}
    for item in items:
        if item.ok and item.execution_service_id is not None:
            counts[item.execution_service_id] = counts.get(item.execution_service_id, 0) + 1
    return [
        ItemResult(
            False,
            message=f"Execution service gave id {item.execution_service_id} to "
            f"{counts[item.execution_service_id]} executions",
            unrecordable=True,
        )
        if item.ok
        and item.execution_service_id is not None
        and counts[item.execution_service_id] > 1
        else item
        for item in items
    ]


def _read(response: httpx.Response, n: int, attempts: int, seconds: float) -> BatchReply:
    code = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if 200 <= code < 300:
        items = _per_item(body, n)
        if items is None:
            message = f"Unreadable response from the execution service (HTTP {code})"
            items = [ItemResult(False, message=message) for _ in range(n)]
            return BatchReply("unreadable", code, items, attempts, seconds)
        outcome = str(code) if code in (201, 207) else "2xx"
        return BatchReply(outcome, code, items, attempts, seconds)
    if code == 400:
        items = _per_item(body, n)
        if items is None:
            message = f"Client error 400: {_message_of(response)}"
            items = [ItemResult(False, message=message) for _ in range(n)]
        return BatchReply("400", code, items, attempts, seconds)
    message = f"Client error {code}: {_message_of(response)}"
    return BatchReply("4xx", code, [ItemResult(False, message=message)] * n, attempts, seconds)
