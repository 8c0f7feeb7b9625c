"""Client of the trade service's fill endpoint (reference A11, B7).

A fill is reported as the original did: read the trade-side execution for its
current ``version`` (``GET /api/v1/executions/{id}``), then
``PUT /api/v1/executions/{id}/fill`` with ``{executionStatus, quantityFilled,
version}``; on 409 (someone else changed it) read again and retry. We also send
``averagePrice``, which the original dropped (C8); Spring's and our trade service's
deserialisers accept it, older ones ignore it.

Errors are sorted for the caller's retry policy: :class:`FillRejected` will not get
better by retrying (the trade service refused the fill: 400, 404…),
:class:`FillDeliveryError` may (network, timeouts, 5xx, repeated 409).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from tranche.execution.schemas import dumps

__all__ = ["FillDeliveryError", "FillRejected", "TradeServiceClient"]

_TRANSIENT = {408, 425, 429}


class FillDeliveryError(RuntimeError):
    """The fill did not get through this time; try again later."""


class FillRejected(RuntimeError):
    """The trade service refused the fill; retrying will not help."""


def _detail(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return f"HTTP {response.status_code}: {text[:300]}" if text else f"HTTP {response.status_code}"


class TradeServiceClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        conflict_retries: int = 3,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout_s)
        self.conflict_retries = conflict_retries

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 500 or response.status_code in _TRANSIENT:
            raise FillDeliveryError(f"{what}: {_detail(response)}")
        raise FillRejected(f"{what}: {_detail(response)}")

    async def _version(self, trade_execution_id: int) -> int:
        url = f"{self.base_url}/api/v1/executions/{trade_execution_id}"
        try:
            response = await self.http.get(url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise FillDeliveryError(f"GET trade execution: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            self._raise_for(response, f"GET trade execution {trade_execution_id}")
        try:
            body: Any = response.json()
            return int(body["version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise FillDeliveryError(f"GET trade execution: unreadable answer ({exc})") from exc

    async def report_fill(
        self,
        trade_execution_id: int,
        execution_status: str,
        quantity_filled: Decimal,
        average_price: Decimal | None,
    ) -> int:
        """Deliver one fill; returns the trade-side version it was applied to."""
        url = f"{self.base_url}/api/v1/executions/{trade_execution_id}/fill"
        for _ in range(self.conflict_retries + 1):
            version = await self._version(trade_execution_id)
            body = {
                "executionStatus": execution_status,
                "quantityFilled": quantity_filled,
                "averagePrice": average_price,
                "version": version,
            }
            try:
                response = await self.http.put(
                    url,
                    content=dumps(body),
                    headers={"content-type": "application/json"},
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                raise FillDeliveryError(f"PUT fill: {type(exc).__name__}: {exc}") from exc
            if response.status_code in (200, 201, 204):
                return version
            if response.status_code != 409:
                self._raise_for(response, f"PUT fill of trade execution {trade_execution_id}")
        raise FillDeliveryError(
            f"PUT fill: version conflict {self.conflict_retries + 1} times in a row"
        )
