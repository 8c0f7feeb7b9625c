"""JWT verification: user-service's tokens pass; forged, expired, unsigned or foreign ones do not."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest

from tranche.core.jwt import InvalidTokenError, JwtVerifier, issue_token

SECRET = b"portal-secret-shared-by-user-service-and-gateway!"
NOW = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)


def verifier(**kw: object) -> JwtVerifier:
    return JwtVerifier(key=SECRET, issuer="user-service", clock=lambda: NOW, **kw)  # type: ignore[arg-type]


def token(**kw: object) -> str:
    args: dict[str, object] = {
        "key": SECRET,
        "subject": "admin@univ.fr",
        "roles": ["ROLE_ADMIN"],
        "issuer": "user-service",
        "now": NOW - timedelta(minutes=5),
    }
    args.update(kw)
    return issue_token(**args)  # type: ignore[arg-type]


def test_user_service_token_is_accepted() -> None:
    claims = verifier().verify(token())
    assert claims.subject == "admin@univ.fr"
    assert claims.has_role("ROLE_ADMIN")
    assert claims.expires_at == NOW - timedelta(minutes=5) + timedelta(hours=1)


def test_key_is_the_raw_utf8_secret_not_base64() -> None:
    # What jjwt's Keys.hmacShaKeyFor(secret.getBytes(UTF_8)) signs with.
    raw = pyjwt.encode(
        {"sub": "a@b.fr", "roles": [], "iss": "user-service", "exp": int(NOW.timestamp()) + 60},
        SECRET,
        algorithm="HS256",
    )
    assert verifier().verify(raw).subject == "a@b.fr"
    with pytest.raises(InvalidTokenError, match="signature"):
        JwtVerifier(key=base64.b64encode(SECRET), issuer="user-service", clock=lambda: NOW).verify(
            raw
        )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda: token(now=NOW - timedelta(hours=2)), "expired"),
        (lambda: token(key=b"another-secret-of-at-least-32-bytes!!"), "signature"),
        (lambda: token(issuer="someone-else"), "issuer"),
        (lambda: "not-a-token", "malformed"),
        (lambda: token(algorithm="HS384"), "algorithm"),
    ],
)
def test_refused_tokens(bad: object, message: str) -> None:
    with pytest.raises(InvalidTokenError, match=message):
        verifier().verify(bad())  # type: ignore[operator]


def _unsigned(payload: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


def test_alg_none_is_refused() -> None:
    forged = _unsigned(
        {"sub": "x@y.fr", "roles": ["ROLE_ADMIN"], "iss": "user-service", "exp": 4102444800}
    )
    with pytest.raises(InvalidTokenError, match="algorithm 'none'"):
        verifier().verify(forged)


def test_missing_exp_and_bad_roles_are_refused() -> None:
    no_exp = pyjwt.encode({"sub": "a@b.fr", "iss": "user-service"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidTokenError, match="'exp' is required"):
        verifier().verify(no_exp)
    as_string = pyjwt.encode(
        {"sub": "a@b.fr", "roles": "ROLE_ADMIN", "iss": "user-service", "exp": 4102444800},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(InvalidTokenError, match="roles"):
        verifier().verify(as_string)


def test_error_never_contains_the_token_or_key() -> None:
    bad = token(key=b"another-secret-of-at-least-32-bytes!!")
    with pytest.raises(InvalidTokenError) as info:
        verifier().verify(bad)
    assert bad not in str(info.value)
    assert SECRET.decode() not in str(info.value)
