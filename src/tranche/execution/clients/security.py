"""Client of the GlobeCo security service: security id ↔ ticker, cached.

Ids → tickers: ``GET /api/v2/securities?securityId=…`` with up to 50 ids a call,
answers matched by ``securityId``. The deployed v2 service ignores ``securityId``
and returns an unfiltered page (reference C3), which is why the original's habit of
taking the first element produced wrong tickers; matching by id makes that page
harmless (any pairs it holds are cached), and every id still missing is looked up
alone with ``GET /api/v1/security/{id}``. Ticker → id: ``GET /api/v2/securities?ticker=``
(exact, case-insensitive there), again matched rather than trusted.

Found pairs are cached for ``cache_ttl_s``; unknown ids for ``negative_ttl_s`` (so a
security created later shows up soon). A failed call (timeout, 5xx, garbage) is not
cached: the ticker degrades to null, a metric counts it, and the client's circuit
breaker (``core.resilience.CircuitBreaker``; by default the first failure opens it)
makes no call for ``cooldown_s``, then lets one probe through, so a dead security
service costs one timeout, not one per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from cachetools import TTLCache
from prometheus_client import CollectorRegistry, Counter

from tranche.core.logging import get_logger
from tranche.core.resilience import BreakerState, CircuitBreaker, CircuitOpenError

__all__ = ["SecurityClient", "SecurityServiceUnavailable"]

log = get_logger(__name__)
_MISSING = object()


class SecurityServiceUnavailable(RuntimeError):
    """The security service could not answer (down, timing out, or replying nonsense)."""


class SecurityClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | None,
        registry: CollectorRegistry,
        *,
        batch_size: int = 50,
        cache_size: int = 10_000,
        cache_ttl_s: float = 24 * 3600,
        negative_ttl_s: float = 60.0,
        timeout_s: float = 5.0,
        cooldown_s: float = 10.0,
        failure_threshold: int = 1,
        fallback_concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/") if base_url else None
        self.batch_size = batch_size
        self.timeout = httpx.Timeout(timeout_s)
        self.clock = clock
        self.breaker = CircuitBreaker(failure_threshold, cooldown_s, clock=clock)
        self._fallback = asyncio.Semaphore(fallback_concurrency)
        self._tickers: TTLCache[str, str] = TTLCache(cache_size, cache_ttl_s, timer=clock)
        self._unknown: TTLCache[str, bool] = TTLCache(cache_size, negative_ttl_s, timer=clock)
        self._ids: TTLCache[str, str] = TTLCache(cache_size, cache_ttl_s, timer=clock)
        self.lookups = Counter(
            "execution_security_lookups",
            "Ticker lookups by outcome (cache hit, fetched, unknown, failed)",
            ["outcome"],
            registry=registry,
        )
        self.calls = Counter(
            "execution_security_service_calls",
            "HTTP calls to the security service",
            ["endpoint", "result"],
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        return self.base_url is not None

    def _available(self) -> bool:
        """Worth trying: the circuit is not open (a half-open one lets one call through)."""
        return self.breaker.state is not BreakerState.OPEN

    def _failed(self, what: str, exc: Exception) -> None:
        if not _counted_by_get(exc):
            self.breaker.record_failure(f"{type(exc).__name__}: {exc}")
        log.warning("security_service_failed", call=what, error=f"{type(exc).__name__}: {exc}")

    async def _get(self, endpoint: str, path: str, params: Any = None) -> httpx.Response:
        """One call, if the breaker lets it out (else :class:`CircuitOpenError`); the caller
        reports the outcome to the breaker."""
        self.breaker.check()
        try:
            response = await self.http.get(
                f"{self.base_url}{path}", params=params, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            self.calls.labels(endpoint, "error").inc()
            self.breaker.record_failure(f"{type(exc).__name__}: {exc}")
            raise
        except BaseException:  # cancelled: a half-open probe permit must not stay out
            self.breaker.release()
            raise
        self.calls.labels(endpoint, str(response.status_code)).inc()
        if response.status_code >= 500:
            self.breaker.record_failure(f"HTTP {response.status_code}")
        else:
            self.breaker.record_success()
        return response

    def _remember(self, securities: Any) -> None:
        """Cache every well-formed ``{securityId, ticker}`` pair of an answer."""
        if not isinstance(securities, list):
            raise SecurityServiceUnavailable("answer has no 'securities' list")
        for entry in securities:
            if not isinstance(entry, dict):
                continue
            sid, ticker = entry.get("securityId"), entry.get("ticker")
            if isinstance(sid, str) and isinstance(ticker, str):
                self._tickers[sid] = ticker
                self._ids[ticker.upper()] = sid
                self._unknown.pop(sid, None)

    async def tickers_for(self, security_ids: Iterable[str]) -> dict[str, str | None]:
        """Ticker of each id (None when unknown or when the service cannot be reached)."""
        wanted = list(dict.fromkeys(security_ids))
        if not self.enabled:  # nothing is ever cached then: skip a cache probe per id
            self.lookups.labels("skipped").inc(len(wanted))
            return dict.fromkeys(wanted)
        out: dict[str, str | None] = {}
        missing: list[str] = []
        for sid in wanted:
            ticker = self._tickers.get(sid)
            if ticker is not None:
                out[sid] = ticker
                self.lookups.labels("hit").inc()
            elif sid in self._unknown:
                out[sid] = None
                self.lookups.labels("hit").inc()
            else:
                missing.append(sid)
        if not missing:
            return out
        if not self.enabled or not self._available():
            self.lookups.labels("skipped" if not self.enabled else "failed").inc(len(missing))
            return out | dict.fromkeys(missing)
        for start in range(0, len(missing), self.batch_size):
            await self._fetch_batch(missing[start : start + self.batch_size])
        still = [sid for sid in missing if sid not in self._tickers and sid not in self._unknown]
        if still and self._available():
            await asyncio.gather(*(self._fetch_one(sid) for sid in still))
        for sid in missing:
            ticker = self._tickers.get(sid)
            out[sid] = ticker
            if ticker is not None:
                self.lookups.labels("fetched").inc()
            elif sid in self._unknown:
                self.lookups.labels("unknown").inc()
            else:
                self.lookups.labels("failed").inc()
        return out

    async def _fetch_batch(self, ids: list[str]) -> None:
        params = [("securityId", sid) for sid in ids] + [("limit", str(self.batch_size))]
        try:
            response = await self._get("v2-by-ids", "/api/v2/securities", params)
            response.raise_for_status()
            self._remember(response.json().get("securities"))
        except CircuitOpenError:
            return  # another call is probing the service; the ids stay unresolved
        except httpx.TransportError as exc:
            self._failed("v2-by-ids", exc)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code >= 500:
                self._failed("v2-by-ids", exc)
            else:
                log.info("security_batch_lookup_refused", status=exc.response.status_code)
        except (ValueError, AttributeError, SecurityServiceUnavailable) as exc:
            # A garbled page: the per-id fallback still gets its chance for each id.
            log.info("security_batch_lookup_unreadable", ids=len(ids), error=str(exc))

    async def _fetch_one(self, sid: str) -> None:
        async with self._fallback:
            if not self._available():
                return
            try:
                response = await self._get("v1-by-id", f"/api/v1/security/{sid}")
                if response.status_code == 404:
                    self._unknown[sid] = True
                    return
                response.raise_for_status()
                self._remember([response.json()])
            except CircuitOpenError:
                return
            except (httpx.HTTPError, ValueError, SecurityServiceUnavailable) as exc:
                self._failed("v1-by-id", exc)

    async def security_id_for(self, ticker: str) -> str | None:
        """Security id of ``ticker`` (case-insensitive), None if the service knows none.

        Raises :class:`SecurityServiceUnavailable` rather than answering "none" when it
        cannot tell: a filter must not silently turn into an empty result.
        """
        key = ticker.upper()
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        if not self.enabled:
            raise SecurityServiceUnavailable("no security service is configured")
        if not self._available():
            raise SecurityServiceUnavailable("the security service failed recently")
        try:
            response = await self._get("v2-by-ticker", "/api/v2/securities", {"ticker": ticker})
            if response.status_code in (400, 404, 422):
                return None
            response.raise_for_status()
            self._remember(response.json().get("securities"))
        except CircuitOpenError as exc:
            raise SecurityServiceUnavailable("the security service failed recently") from exc
        except (httpx.HTTPError, ValueError, AttributeError, SecurityServiceUnavailable) as exc:
            self._failed("v2-by-ticker", exc)
            raise SecurityServiceUnavailable(f"security service lookup failed: {exc}") from exc
        return self._ids.get(key)


def _counted_by_get(exc: Exception) -> bool:
    """Transport errors and 5xx answers, which ``_get`` already reported to the breaker."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500
    return isinstance(exc, httpx.HTTPError)
