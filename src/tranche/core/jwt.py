"""Verification (and, for tests and demos, issuing) of HMAC-signed JSON Web Tokens.

A thin policy layer over PyJWT: the algorithm list is fixed by the verifier, never
taken from the token's header (so ``alg: none`` and algorithm confusion are
refused), the key is the raw bytes of a shared secret, ``exp`` and ``iss`` are
required, ``exp``, ``nbf`` and ``iat`` are checked against an injected clock with a
small leeway for clock skew between issuer and verifier, and every refusal is a
:class:`InvalidTokenError` whose message is safe to show a caller (it never contains
the token or the key).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from tranche.core.clock import Clock, utc_now

__all__ = ["Claims", "InvalidTokenError", "JwtVerifier", "issue_token"]


class InvalidTokenError(Exception):
    """The token is missing, malformed, unsigned, badly signed, expired or from another issuer."""


@dataclass(frozen=True)
class Claims:
    """What a verified token says about its bearer."""

    subject: str
    roles: frozenset[str]
    issuer: str
    expires_at: datetime
    raw: dict[str, Any] = field(compare=False, repr=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class JwtVerifier:
    """Checks signature, algorithm, ``exp``, ``iss`` and the presence of ``sub``."""

    key: bytes = field(repr=False)
    issuer: str
    algorithms: Sequence[str] = ("HS256",)
    leeway_s: int = 0
    roles_claim: str = "roles"
    clock: Clock = utc_now

    def verify(self, token: str) -> Claims:
        if not token or token.count(".") != 2:
            raise InvalidTokenError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed token") from None
        if header.get("alg") not in self.algorithms:
            raise InvalidTokenError(f"algorithm {header.get('alg')!r} is not accepted")
        try:
            payload = jwt.decode(
                token,
                self.key,
                algorithms=list(self.algorithms),
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("signature does not match") from None
        except jwt.InvalidIssuerError:
            raise InvalidTokenError(f"issuer is not {self.issuer!r}") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidTokenError(f"claim {exc.claim!r} is required") from None
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"invalid token: {type(exc).__name__}") from None
        # Expiry against the injected clock, so tests need no sleeping or frozen time.
        exp = payload.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidTokenError("claim 'exp' must be a number")
        expires_at = datetime.fromtimestamp(exp, UTC)
        now = self.clock()
        leeway = timedelta(seconds=self.leeway_s)
        if now >= expires_at + leeway:
            raise InvalidTokenError("token has expired")
        for claim, problem in (("nbf", "is not valid yet"), ("iat", "was issued in the future")):
            value = payload.get(claim)
            if value is None:
                continue
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidTokenError(f"claim {claim!r} must be a number")
            if datetime.fromtimestamp(value, UTC) > now + leeway:
                raise InvalidTokenError(f"token {problem} (claim {claim!r}, beyond the leeway)")
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidTokenError("claim 'sub' must be a non-empty string")
        roles = payload.get(self.roles_claim, [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise InvalidTokenError(f"claim {self.roles_claim!r} must be a list of strings")
        return Claims(sub, frozenset(roles), str(payload["iss"]), expires_at, payload)


def issue_token(
    key: bytes,
    subject: str,
    roles: Sequence[str],
    issuer: str,
    ttl: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    algorithm: str = "HS256",
    extra: dict[str, Any] | None = None,
) -> str:
    """A token shaped like the issuer's (``sub``, ``roles``, ``iss``, ``iat``, ``exp``)."""
    issued = now or utc_now()
    payload: dict[str, Any] = {
        **(extra or {}),
        "sub": subject,
        "roles": list(roles),
        "iss": issuer,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    return jwt.encode(payload, key, algorithm=algorithm)
