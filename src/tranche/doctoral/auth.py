"""Who may call the admin API, and how often they may trigger a job.

Tokens are user-service's own: HS256 over the raw UTF-8 bytes of ``JWT_SECRET``,
``sub`` = the user's email, ``roles`` = full role names, ``iss`` =
``user-service``. No or a bad token answers 401 with ``WWW-Authenticate:
Bearer``; a good token without ``ROLE_ADMIN`` answers 403. Manual triggers are
rate-limited per admin with the ``limits`` library (moving window; counters in
memory by default, in Redis when ``DOCTORAL_RATE_LIMIT_STORAGE_URL`` says so,
which shares them between replicas); over the limit answers 429 with
``Retry-After``.
"""

from __future__ import annotations

import ipaddress
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from tranche.core.errors import ApiError
from tranche.core.jwt import Claims, InvalidTokenError, JwtVerifier
from tranche.core.logging import get_logger
from tranche.doctoral.settings import DoctoralSettings

__all__ = [
    "ADMIN_ROLE",
    "AdminDep",
    "Principal",
    "TriggerLimiter",
    "bearer_scheme",
    "client_ip",
    "current_admin",
    "is_admin_request",
    "resolve_jwt_secret",
]

ADMIN_ROLE = "ROLE_ADMIN"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
log = get_logger(__name__)

#: Declared once so OpenAPI shows the bearer scheme on every admin route.
bearer_scheme = HTTPBearer(
    scheme_name="Bearer Authentication",
    bearerFormat="JWT",
    description="A user-service access token holding ROLE_ADMIN.",
    auto_error=False,
)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller, as the audit log records them."""

    email: str
    roles: frozenset[str]
    ip_address: str | None
    user_agent: str | None

    @property
    def role_list(self) -> str:
        return ",".join(sorted(self.roles))


def resolve_jwt_secret(settings: DoctoralSettings) -> bytes:
    """``JWT_SECRET``'s bytes; in embedded mode without one, a generated secret kept in DATA_DIR."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value().encode()
    path: Path = settings.jwt_secret_file
    if path.exists():
        secret = path.read_text().strip()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(secret)
    log.warning(
        "jwt_secret_generated",
        message=(
            "JWT_SECRET is unset: using a generated secret for this embedded setup. Tokens from "
            "the portal's user-service will be refused. Set JWT_SECRET to user-service's secret."
        ),
        file=str(path),
    )
    return secret.encode()


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(peer: str | None, forwarded: str | None, proxies: Sequence[IPNetwork]) -> str | None:
    """The caller's address: ``X-Forwarded-For`` is believed only as far as trusted proxies go.

    The header is walked from the right (the hop nearest to us); the first address that is
    not a trusted proxy is the client. From an untrusted peer the header is ignored, so a
    caller cannot write any IP they like into the audit log.
    """
    if peer is None or not forwarded or not _trusted(peer, proxies):
        return peer
    closest = peer
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return closest  # garbage in the chain: stop at the last address we could vouch for
        if not _trusted(hop, proxies):
            return hop
        closest = hop
    return closest


def _proxies(request: Request) -> list[IPNetwork]:
    runtime = getattr(request.app.state, "runtime", None)
    configured = getattr(getattr(runtime, "settings", None), "trusted_proxies", [])
    return [ipaddress.ip_network(p, strict=False) for p in configured]


def _client(request: Request) -> tuple[str | None, str | None]:
    peer = request.client.host if request.client else None
    ip = client_ip(peer, request.headers.get("x-forwarded-for"), _proxies(request))
    return ip, request.headers.get("user-agent")


async def current_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    verifier: JwtVerifier = request.app.state.jwt_verifier
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "Authentication required: send 'Authorization: Bearer <token>'", headers=challenge
        )
    try:
        claims: Claims = verifier.verify(credentials.credentials)
    except InvalidTokenError as exc:
        raise ApiError(
            401,
            f"Invalid token: {exc}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    if not claims.has_role(ADMIN_ROLE):
        raise ApiError(403, f"Access denied: {ADMIN_ROLE} is required")
    ip, agent = _client(request)
    return Principal(claims.subject, claims.roles, ip, agent)


AdminDep = Annotated[Principal, Depends(current_admin)]


class TriggerLimiter:
    """Moving-window limit on manual triggers, one window per admin."""

    def __init__(self, limit: str, storage_url: str) -> None:
        self.item: RateLimitItem = parse(limit)
        url = storage_url if storage_url.startswith("async+") else f"async+{storage_url}"
        # redis-py rather than limits' default coredis: its client can be closed (close()).
        options = {} if url.startswith("async+memory") else {"implementation": "redispy"}
        storage = storage_from_string(url, **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def hit(self, who: str) -> None:
        """Count one trigger by ``who``, or raise 429 with the seconds until one is allowed."""
        if await self.limiter.hit(self.item, "job-trigger", who):
            return
        stats = await self.limiter.get_window_stats(self.item, "job-trigger", who)
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            f"Too many job triggers: at most {self.item} per admin; retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )

    async def close(self) -> None:
        """Close the Redis connections (limits exposes no close of its own)."""
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        closer = getattr(client, "aclose", None)
        if closer is not None:
            await closer()


async def is_admin_request(request: Request) -> bool:
    """Whether the request carries a valid ROLE_ADMIN token (for health details; never raises)."""
    verifier: JwtVerifier | None = getattr(request.app.state, "jwt_verifier", None)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if verifier is None or scheme.lower() != "bearer" or not token:
        return False
    try:
        return verifier.verify(token.strip()).has_role(ADMIN_ROLE)
    except InvalidTokenError:
        return False
