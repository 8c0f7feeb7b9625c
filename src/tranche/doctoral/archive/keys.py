"""The archive master keys and the per-archive password derived from one of them.

The original batch-service generated its AES key at every start, so nothing it
archived could ever be opened again. Here the master keys come from settings
only (``DOCTORAL_ARCHIVE_KEYS`` and/or ``DOCTORAL_ARCHIVE_KEY_FILE``) and are
never generated behind the operator's back: with none configured the archive
steps fail with :class:`ArchiveKeyError` saying what to set.

Several keys may be configured, each under an id; new archives use
``DOCTORAL_ARCHIVE_KEY_ID`` (default: the last key listed) and every archive
records the id of its key, so archives written before a rotation stay
readable as long as their key stays listed.

Each archive's ZIP password is ``base64url(HKDF-SHA256(master, salt, info))``
(43 characters, no padding) with a random 16-byte salt stored in the archive's
ZIP comment beside the key id (:data:`INFO`). It is a printable string because
7-Zip and every other WinZip-AES reader take the password as typed text.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

__all__ = [
    "INFO",
    "MIN_KEY_BYTES",
    "ArchiveKeyError",
    "Keyring",
    "derive_password",
    "new_key",
    "parse_key",
    "read_key_file",
]

#: HKDF "info": binds derived passwords to this use of the master key.
INFO = b"tranche doctoral archive password v1"
MIN_KEY_BYTES = 32
_KEY_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ArchiveKeyError(RuntimeError):
    """No usable master key: unset, malformed, or not the one an archive needs."""


def parse_key(text: str, where: str) -> bytes:
    """A master key written as base64 (standard or URL-safe) of at least 32 bytes."""
    raw = text.strip()
    try:
        padded = raw + "=" * (-len(raw) % 4)
        key = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ArchiveKeyError(f"{where}: the key is not base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise ArchiveKeyError(
            f"{where}: the key is {len(key)} bytes, at least {MIN_KEY_BYTES} are needed "
            "(generate one with `tranche archive new-key`)"
        )
    return key


def _check_id(key_id: str, where: str) -> str:
    if not key_id or len(key_id) > 64 or not set(key_id) <= _KEY_ID_CHARS:
        raise ArchiveKeyError(f"{where}: key id {key_id!r} must be 1-64 of [A-Za-z0-9._-]")
    return key_id


def read_key_file(path: Path) -> dict[str, bytes]:
    """``id=base64key`` lines (``#`` starts a comment), in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ArchiveKeyError(f"archive key file {path}: {exc.strerror or exc}") from None
    keys: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"archive key file {path}, line {number}"
        key_id, sep, value = line.partition("=")
        if not sep:
            raise ArchiveKeyError(f"{where}: expected `id=base64key`")
        keys[_check_id(key_id.strip(), where)] = parse_key(value, where)
    return keys


def derive_password(master: bytes, salt: bytes) -> str:
    """The ZIP password of the archive with this ``salt`` (see the module docstring)."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=INFO).derive(master)
    return base64.urlsafe_b64encode(derived).rstrip(b"=").decode("ascii")


def new_key() -> str:
    """A fresh random 256-bit master key, base64 (for ``tranche archive new-key`` only)."""
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The configured master keys by id, and the id new archives are written with."""

    keys: Mapping[str, bytes]
    current_id: str | None

    @classmethod
    def load(
        cls,
        inline: Mapping[str, SecretStr],
        key_file: Path | None,
        current_id: str | None,
    ) -> Keyring:
        """From the settings; raises :class:`ArchiveKeyError` on a malformed key."""
        keys: dict[str, bytes] = {}
        if key_file is not None:
            keys.update(read_key_file(key_file))
        for key_id, secret in inline.items():
            where = f"DOCTORAL_ARCHIVE_KEYS[{key_id!r}]"
            keys[_check_id(key_id, where)] = parse_key(secret.get_secret_value(), where)
        if current_id is not None and keys and current_id not in keys:
            raise ArchiveKeyError(
                f"DOCTORAL_ARCHIVE_KEY_ID={current_id!r} is not among the configured keys "
                f"({', '.join(sorted(keys))})"
            )
        chosen = current_id if current_id is not None else (list(keys)[-1] if keys else None)
        return cls(keys, chosen)

    def current(self) -> tuple[str, bytes]:
        """The key new archives are written with."""
        if self.current_id is None:
            raise ArchiveKeyError(
                "no archive master key configured: set DOCTORAL_ARCHIVE_KEYS "
                '(JSON, e.g. {"2026-01": "<base64 of 32 random bytes>"}) or '
                "DOCTORAL_ARCHIVE_KEY_FILE (lines `id=base64key`); create one with "
                "`tranche archive new-key` and keep it safe: archives cannot be opened without it"
            )
        return self.current_id, self.keys[self.current_id]

    def get(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            known = ", ".join(sorted(self.keys)) or "none"
            raise ArchiveKeyError(
                f"the archive was written with key {key_id!r}, which is not configured "
                f"(configured: {known}); add it back to DOCTORAL_ARCHIVE_KEYS or the key file"
            ) from None
