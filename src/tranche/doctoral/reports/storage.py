"""The reports directory: atomic writes, the listing, and the only names it will ever serve.

A report is written to a temporary file in the same directory, flushed and
fsynced, then renamed over the final name (and the directory fsynced), so a
reader — the download API, a mail attachment — sees the old file or the new
one, never half of one, even across a crash. Serving is by name: only names
of the two report patterns (``rapport_YYYY_MM.pdf``, and the consistency job's
``anomaly_report_yyyy_MM_dd_HHmmss.pdf``) are accepted; anything else — ``..``,
slashes and backslashes however encoded, absolute paths, other extensions —
is refused before the file system is touched, and a symlink (which could point
outside) is never followed (``O_NOFOLLOW``).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "REPORT_NAME",
    "InvalidReportName",
    "ReportFile",
    "ReportNotFound",
    "ReportStore",
    "ReportWriteError",
]

#: The names a report can have; nothing else is listed or served.
REPORT_NAME = re.compile(
    r"^(?:rapport_\d{4}_(?:0[1-9]|1[0-2])|anomaly_report_\d{4}_\d{2}_\d{2}_\d{6})\.pdf$"
)
_CHUNK = 64 * 1024


class InvalidReportName(ValueError):
    """Not the name of a report (a traversal attempt, another file type…)."""


class ReportNotFound(LookupError):
    """A well-formed name with no regular file behind it."""


class ReportWriteError(OSError):
    """The report could not be written (disk full, file size limit…); names the final file,
    not the temporary one, which is removed."""


@dataclass(frozen=True)
class ReportFile:
    name: str
    size: int
    modified: datetime


class ReportStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, name: str, content: bytes) -> Path:
        """Write ``content`` as ``name`` atomically (replacing a previous file of that name)."""
        self._check(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o640)
            os.replace(temp, self.directory / name)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            if isinstance(exc, OSError):
                # The bare error ("[Errno 28] No space left on device") names no file.
                raise ReportWriteError(exc.errno, exc.strerror, str(self.directory / name)) from exc
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self.directory / name

    def list(self) -> list[ReportFile]:
        """Every report, newest first (by modification time, then name)."""
        found = []
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not REPORT_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            found.append(
                ReportFile(entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
            )
        return sorted(found, key=lambda f: (f.modified, f.name), reverse=True)

    def open(self, name: str) -> tuple[ReportFile, Iterator[bytes]]:
        """The report's description and an iterator over its bytes (closing the file at its end)."""
        self._check(name)
        try:
            fd = os.open(self.directory / name, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            raise ReportNotFound(name) from None
        except OSError:  # ELOOP: a symlink, which is never served
            raise ReportNotFound(name) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise ReportNotFound(name)
        info = ReportFile(name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
        return info, _chunks(fd)

    def read(self, name: str) -> bytes:
        _, chunks = self.open(name)
        return b"".join(chunks)

    @staticmethod
    def _check(name: str) -> None:
        if not isinstance(name, str) or not REPORT_NAME.match(name):
            raise InvalidReportName(
                "fileName must be a report name: rapport_YYYY_MM.pdf or "
                "anomaly_report_yyyy_MM_dd_HHmmss.pdf"
            )


def _chunks(fd: int) -> Iterator[bytes]:
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk
