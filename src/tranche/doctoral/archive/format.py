"""The archive file: a standard WinZip-AES-256 ZIP that 7-Zip opens with one password.

Layout of ``<archives>/<YYYY>/<MM>/<enrollment|defense>_<id>_<yyyyMMdd_HHmmss>.zip``::

    manifest.json          the record and its related rows, and for every file
                           its name here, where it came from, SHA-256 and size
    files/001_cv.pdf       the record's documents, in manifest order
    ...

Every member is AES-256 encrypted (WinZip AE-2, via ``pyzipper``: the format
7-Zip, WinZip and Info-ZIP-era tools read). The ZIP comment, which ZIP leaves
in clear, holds only the format, the master key id and the password's salt
(:mod:`tranche.doctoral.archive.keys`): enough for ``tranche archive password``
to print the password, nothing about the person.

Writing never leaves a partial archive under its final name: the ZIP goes to
a hidden temporary name in the same directory, is fsynced, re-opened and
verified member by member against the manifest, then renamed and the directory
fsynced. Any failure (disk full, read-only directory, a file that changed while
being read) removes the temporary file and raises :class:`ArchiveWriteError`.
Files are streamed in 1 MiB blocks, so memory does not grow with file sizes.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

import orjson
import pyzipper

from tranche.doctoral.archive.keys import Keyring, derive_password

__all__ = [
    "FORMAT",
    "MANIFEST",
    "ArchiveError",
    "ArchiveHeader",
    "ArchiveWriteError",
    "SourceFile",
    "WrittenArchive",
    "archive_name",
    "check_writable",
    "extract",
    "file_sha256",
    "password",
    "read_header",
    "read_manifest",
    "verify",
    "write_archive",
]

FORMAT = "tranche-doctoral-archive/1"
MANIFEST = "manifest.json"
_BLOCK = 1 << 20
_COMMENT = re.compile(
    rb"^tranche-doctoral-archive/1 key=([A-Za-z0-9._-]{1,64}) salt=([0-9a-f]{32})$"
)
#: Room kept free besides an archive's own estimated size (the ZIP headers, the filesystem).
_SPARE_BYTES = 1 << 20


class ArchiveError(RuntimeError):
    """An archive cannot be read: not ours, wrong key, or a member that fails its hash."""


class ArchiveWriteError(OSError):
    """An archive could not be written; nothing was left under its final name."""


@dataclass(frozen=True)
class SourceFile:
    """A document to archive: a file on disk (``path``) or bytes held inline in a row."""

    member: str
    origin: dict[str, Any]
    path: Path | None = None
    data: bytes | None = None

    def size(self) -> int:
        return len(self.data) if self.data is not None else self._path().stat().st_size

    def _path(self) -> Path:
        if self.path is None:
            raise ValueError(f"{self.member}: neither a path nor inline data")
        return self.path

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
            return
        with self._path().open("rb") as f:
            while block := f.read(_BLOCK):
                yield block


@dataclass(frozen=True)
class ArchiveHeader:
    key_id: str
    salt: bytes


@dataclass(frozen=True)
class WrittenArchive:
    path: Path
    key_id: str
    sha256: str
    compressed_size: int
    uncompressed_size: int
    files: list[dict[str, Any]] = field(default_factory=list)


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _json(value: Any) -> bytes:
    # OPT_NON_STR_KEYS: table names are SQLAlchemy quoted_name, a str subclass.
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return orjson.dumps(value, option=options)


def _fail(what: str, exc: OSError) -> ArchiveWriteError:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "read-only file system"
    return ArchiveWriteError(exc.errno or errno.EIO, f"{what}: {reason}")


def check_writable(directory: Path) -> None:
    """Create and remove a probe file; raises :class:`ArchiveWriteError` with the reason."""
    probe = directory / f".write-probe-{secrets.token_hex(4)}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as f:
            f.write(b"probe")
            f.flush()
            _fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        probe.unlink(missing_ok=True)
        raise _fail(f"archive directory {directory} is not writable", exc) from exc


def _check_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed + _SPARE_BYTES:
        raise ArchiveWriteError(
            errno.ENOSPC,
            f"not enough free space in {directory}: the archive needs about {needed} bytes, "
            f"{free} are free",
        )


def write_archive(
    final: Path,
    manifest: dict[str, Any],
    files: Sequence[SourceFile],
    key_id: str,
    master: bytes,
) -> WrittenArchive:
    """Write, verify and atomically publish one archive (see the module docstring).

    ``manifest`` is completed here with ``format``, ``keyId`` and ``files``.
    """
    salt = secrets.token_bytes(16)
    password = derive_password(master, salt).encode("ascii")
    directory = final.parent
    tmp = directory / f".{final.name}.{secrets.token_hex(4)}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _check_space(directory, sum(f.size() for f in files))
        entries: list[dict[str, Any]] = []
        with tmp.open("wb") as raw:
            with _zip(raw, "w", password) as z:
                z.comment = b"%s key=%s salt=%s" % (
                    FORMAT.encode(),
                    key_id.encode("ascii"),
                    salt.hex().encode(),
                )
                for source in files:
                    entries.append(_add(z, source))
                body = _json({**manifest, "format": FORMAT, "keyId": key_id, "files": entries})
                z.writestr(MANIFEST, body)
            raw.flush()
            _fsync(raw.fileno())
        verify(tmp, Keyring({key_id: master}, key_id))
        digest = file_sha256(tmp)
        compressed = tmp.stat().st_size
        os.replace(tmp, final)
        _fsync_dir(directory)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, ArchiveWriteError):
            raise
        raise _fail(f"cannot write archive {final}", exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    uncompressed = sum(int(e["size"]) for e in entries) + len(body)
    return WrittenArchive(final, key_id, digest, compressed, uncompressed, entries)


def _zip(target: Path | IO[bytes], mode: str, password: bytes) -> pyzipper.AESZipFile:
    z = pyzipper.AESZipFile(
        target, mode, compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES
    )
    z.setpassword(password)
    if mode == "w":
        z.setencryption(pyzipper.WZ_AES, nbits=256)
    return z


def _add(z: pyzipper.AESZipFile, source: SourceFile) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with z.open(source.member, "w", force_zip64=True) as out:
        for block in source.chunks():
            digest.update(block)
            size += len(block)
            out.write(block)
    return {"member": source.member, "sha256": digest.hexdigest(), "size": size, **source.origin}


def read_header(path: Path) -> ArchiveHeader:
    """The key id and salt from the ZIP comment (no password needed)."""
    try:
        with pyzipper.AESZipFile(path) as z:
            comment = bytes(z.comment)
    except (OSError, pyzipper.BadZipFile) as exc:
        raise ArchiveError(f"{path} is not a readable ZIP archive: {exc}") from None
    match = _COMMENT.match(comment)
    if match is None:
        raise ArchiveError(f"{path} is not a tranche doctoral archive (no {FORMAT} comment)")
    return ArchiveHeader(match.group(1).decode(), bytes.fromhex(match.group(2).decode()))


def password(path: Path, keyring: Keyring) -> str:
    header = read_header(path)
    return derive_password(keyring.get(header.key_id), header.salt)


def read_manifest(path: Path, keyring: Keyring) -> dict[str, Any]:
    pw = password(path, keyring).encode("ascii")
    try:
        with _zip(path, "r", pw) as z:
            manifest: dict[str, Any] = orjson.loads(z.read(MANIFEST))
    except RuntimeError as exc:  # pyzipper: "Bad password for file"
        key_id = read_header(path).key_id
        raise ArchiveError(f"{path}: cannot decrypt with key {key_id}: {exc}") from None
    except (KeyError, pyzipper.BadZipFile, orjson.JSONDecodeError) as exc:
        raise ArchiveError(f"{path}: no readable manifest: {exc}") from None
    return manifest


def _members(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    files = manifest.get("files")
    if manifest.get("format") != FORMAT or not isinstance(files, list):
        raise ArchiveError(f"manifest is not {FORMAT}")
    for entry in files:
        name = PurePosixPath(str(entry.get("member", "")))
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise ArchiveError(f"unsafe member name {entry.get('member')!r}")
    return files


def _copy_member(
    z: pyzipper.AESZipFile, entry: dict[str, Any], out: IO[bytes] | None
) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with z.open(entry["member"]) as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
            if out is not None:
                out.write(block)
    return digest.hexdigest(), size


def _check(entry: dict[str, Any], got: tuple[str, int]) -> None:
    if got != (entry["sha256"], entry["size"]):
        raise ArchiveError(
            f"{entry['member']}: SHA-256 {got[0]} / {got[1]} bytes, "
            f"manifest says {entry['sha256']} / {entry['size']} bytes"
        )


def verify(path: Path, keyring: Keyring) -> dict[str, Any]:
    """Decrypt every member and compare it with the manifest; returns the manifest."""
    manifest = read_manifest(path, keyring)
    pw = password(path, keyring).encode("ascii")
    with _zip(path, "r", pw) as z:
        for entry in _members(manifest):
            _check(entry, _copy_member(z, entry, None))
    return manifest


def extract(
    path: Path, keyring: Keyring, targets: dict[str, Path], overwrite: bool = False
) -> dict[str, Any]:
    """Write members to ``targets`` (member → file), each verified before it gets its name.

    Without ``overwrite`` nothing is written when any target exists already.
    """
    manifest = read_manifest(path, keyring)
    entries = {e["member"]: e for e in _members(manifest)}
    unknown = sorted(set(targets) - set(entries) - {MANIFEST})
    if unknown:
        raise ArchiveError(f"not in the archive: {', '.join(unknown)}")
    existing = sorted(str(t) for t in targets.values() if t.exists())
    if existing and not overwrite:
        raise FileExistsError(f"refusing to overwrite: {', '.join(existing)}")
    pw = password(path, keyring).encode("ascii")
    with _zip(path, "r", pw) as z:
        for member, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
            try:
                with tmp.open("wb") as out:
                    if member == MANIFEST:
                        out.write(_json(manifest))
                    else:
                        _check(entries[member], _copy_member(z, entries[member], out))
                    out.flush()
                    _fsync(out.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
    return manifest


def archive_name(entity: str, entity_id: int, at: datetime) -> PurePosixPath:
    """``<YYYY>/<MM>/<entity>_<id>_<yyyyMMdd_HHmmss>.zip`` (the original's layout, ``.zip``)."""
    return PurePosixPath(f"{at:%Y}/{at:%m}/{entity}_{entity_id}_{at:%Y%m%d_%H%M%S}.zip")
