"""Authentication attacks on the doctoral admin API and report-download path traversal.

tests/doctoral/test_api.py already refuses six bad tokens on every endpoint and
tests/doctoral/test_report_api.py seventeen traversal spellings; this table adds the
attacks they do not try (not-yet-valid, HS/RS confusion, algorithm spellings, header
tricks, claim types, roles that only look like admin) and more path encodings. Every
refusal is a 401 (bad token) or 403 (not an admin), and none of them starts a job.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.doctoral.factories import SECRET, admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import ENDPOINTS, auth, serving

NOW = datetime.now(UTC)
CLAIMS: dict[str, Any] = {
    "sub": "admin@univ.fr",
    "roles": ["ROLE_ADMIN"],
    "iss": "user-service",
    "iat": int(NOW.timestamp()),
    "exp": int((NOW + timedelta(hours=1)).timestamp()),
}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


def _signed(claims: dict[str, Any], **headers: Any) -> str:
    return jwt.encode(claims, SECRET.encode(), algorithm="HS256", headers=headers or None)


def _hmac_as(alg: str) -> str:
    """HS/RS confusion: an RS256 (or other) header whose signature is an HMAC of the secret."""
    import hashlib
    import hmac

    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(CLAIMS).encode())
    mac = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_EC = ec.generate_private_key(ec.SECP256R1())

#: Tokens that must be refused with 401.
UNAUTHENTICATED: dict[str, str | None] = {
    "no token": None,
    "empty bearer": "",
    "malformed: one part": "abc",
    "malformed: four parts": "a.b.c.d",
    "malformed: not base64": "!!!.???.***",
    "malformed: header not JSON": f"{_b64(b'not json')}.{_b64(b'{}')}.x",
    "malformed: header a list": f"{_b64(b'[1]')}.{_b64(b'{}')}.x",
    "huge token": "a" * 60_000 + ".b.c",
    "expired": admin_token(now=NOW - timedelta(hours=2)),
    "not yet valid (nbf)": _signed({**CLAIMS, "nbf": int((NOW + timedelta(hours=1)).timestamp())}),
    "issued in the future (iat)": _signed(
        {**CLAIMS, "iat": int((NOW + timedelta(hours=1)).timestamp())}
    ),
    "wrong signature": admin_token()[:-4] + "AAAA",
    "other secret": jwt.encode(CLAIMS, b"another-secret-that-is-long-enough-0123456789", "HS256"),
    "alg none": _unsigned({"alg": "none", "typ": "JWT"}, CLAIMS),
    "alg None": _unsigned({"alg": "None", "typ": "JWT"}, CLAIMS),
    "alg NONE with signature": _unsigned({"alg": "NONE"}, CLAIMS, _b64(b"sig")),
    "alg missing": _unsigned({"typ": "JWT"}, CLAIMS, _b64(b"sig")),
    "HS/RS confusion (RS256 header, HMAC signature)": _hmac_as("RS256"),
    "ES256 header, HMAC signature": _hmac_as("ES256"),
    "RS256 signed by an attacker's key": jwt.encode(CLAIMS, _RSA, algorithm="RS256"),
    "ES256 signed by an attacker's key": jwt.encode(CLAIMS, _EC, algorithm="ES256"),
    "HS512 header, HMAC-SHA256 signature": _hmac_as("HS512"),
    "jku/x5u/kid header injection, bad signature": _unsigned(
        {"alg": "HS256", "jku": "http://evil/jwks", "x5u": "http://evil", "kid": "../../x"},
        CLAIMS,
        _b64(b"x" * 32),
    ),
    "other issuer": admin_token(issuer="someone-else"),
    "no issuer": _signed({k: v for k, v in CLAIMS.items() if k != "iss"}),
    "no exp": _signed({k: v for k, v in CLAIMS.items() if k != "exp"}),
    "exp a string": _signed({**CLAIMS, "exp": "tomorrow"}),
    "no subject": _signed({k: v for k, v in CLAIMS.items() if k != "sub"}),
    "roles a string": _signed({**CLAIMS, "roles": "ROLE_ADMIN"}),
    "roles of objects": _signed({**CLAIMS, "roles": [{"name": "ROLE_ADMIN"}]}),
}

#: Valid tokens without the admin role: 403.
NOT_ADMIN = {
    "doctorant": ("ROLE_DOCTORANT",),
    "no roles": (),
    "lower case": ("role_admin",),
    "look-alike": ("ROLE_ADMINISTRATOR",),
    "padded": (" ROLE_ADMIN",),
    "prefix only": ("ADMIN",),
}

#: Header spellings that carry a valid admin token wrongly: 401.
WRONG_SCHEME = ["Basic {t}", "Token {t}", "Bearer{t}", "{t}", "Bearer {t} extra"]


async def test_every_endpoint_refuses_each_attack_and_starts_nothing(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    tried = 0
    async with serving(sqlite_databases, kafka_bootstrap) as (_app, client):
        for method, path in ENDPOINTS:
            for why, token in UNAUTHENTICATED.items():
                r = await client.request(method, path, headers=auth(token))
                assert r.status_code == 401, (method, path, why, r.text)
                assert SECRET not in r.text
                tried += 1
            for why, roles in NOT_ADMIN.items():
                r = await client.request(method, path, headers=auth(admin_token(roles=roles)))
                assert r.status_code == 403, (method, path, why, r.text)
                tried += 1
            for spelling in WRONG_SCHEME:
                header = {"Authorization": spelling.format(t=admin_token())}
                r = await client.request(method, path, headers=header)
                assert r.status_code == 401, (method, path, spelling, r.text)
                tried += 1
            r = await client.request(method, f"{path}?access_token={admin_token()}")
            assert r.status_code == 401, (method, path, "token in the query")
            tried += 1
        stats = await client.get("/api/batch/jobs/stats", headers=auth(admin_token()))
        assert stats.json()["totalExecutions"] == 0
    print(f"FIGURE auth endpoints={len(ENDPOINTS)} attempts={tried} admitted=0")


SECRET_TEXT = b"the-secret-outside-the-reports-directory"

TRAVERSALS = [
    "..%2f..%2f..%2fetc%2fpasswd",
    "..%2F..%2Fsecret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E%2Fsecret.txt",
    ".%2e/secret.txt",
    "%252e%252e%252fsecret.txt",
    "%25252e%25252e%25252fsecret.txt",
    "..%c0%afsecret.txt",
    "%c0%ae%c0%ae%c0%afsecret.txt",
    "%e0%80%ae%e0%80%ae/secret.txt",
    "%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt",
    "..%u2215secret.txt",
    "..%5c..%5csecret.txt",
    "..%255csecret.txt",
    "..;%2fsecret.txt",
    "....%2f%2fsecret.txt",
    "%2fetc%2fpasswd",
    "%5c%5cserver%5cshare%5csecret.txt",
    "file:%2f%2f%2fetc%2fpasswd",
    "C:%5cWindows%5cwin.ini",
    "rapport_2025_02.pdf%2f..%2f..%2fsecret.txt",
    "rapport_2025_02.pdf%00",
    "rapport_2025_02.pdf%00.pdf",
    "rapport_2025_02.pdf%0a",
    "rapport_2025_02.pdf%20",
    "rapport_2025_02.pdf.",
    "rapport_2025_02.pdf::$DATA",
    "rapport_2025_02.pdf%3a%3a%24DATA",
    "%ed%a0%80.pdf",
    "rapport_" + "9" * 5000 + "_01.pdf",
    "secret",
    "secret.pdf",
    "link.pdf",
]


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    directory = tmp_path / "reports"
    directory.mkdir()
    (tmp_path / "secret.txt").write_bytes(SECRET_TEXT)
    (tmp_path / "secret.pdf").write_bytes(SECRET_TEXT)
    (directory / "rapport_2025_02.pdf").write_bytes(b"%PDF-1.4 report")
    (directory / "secret").write_bytes(SECRET_TEXT)
    (directory / "link.pdf").symlink_to(tmp_path / "secret.pdf")
    return directory


async def test_report_download_never_leaves_the_reports_directory(
    sqlite_databases: Databases, kafka_bootstrap: str, reports: Path
) -> None:
    headers = auth(admin_token())
    async with serving(sqlite_databases, kafka_bootstrap, reports_dir=reports) as (_app, client):
        ok = await client.get("/api/batch/reports/rapport_2025_02.pdf/download", headers=headers)
        assert ok.status_code == 200
        statuses: dict[int, int] = {}
        for name in TRAVERSALS:
            url = f"http://batch/api/batch/reports/{name}/download"
            r = await client.send(httpx.Request("GET", httpx.URL(url), headers=headers))
            assert r.status_code in (400, 404), (name, r.status_code, r.text[:300])
            assert SECRET_TEXT not in r.content, name
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            anonymous = await client.get(f"/api/batch/reports/{name}/download")
            assert anonymous.status_code in (401, 404), name
            assert SECRET_TEXT not in anonymous.content
    print(f"FIGURE traversal encodings={len(TRAVERSALS)} statuses={statuses} leaked=0")
