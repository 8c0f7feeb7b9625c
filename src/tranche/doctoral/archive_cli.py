"""``tranche archive open|password|restore|new-key``: archiveJob's archives, years later.

The keys come from the doctoral service's settings (``DOCTORAL_ARCHIVE_KEYS``,
``DOCTORAL_ARCHIVE_KEY_FILE``); nothing else of tranche is needed: no
database, no running service. ``password`` prints the archive's ZIP password
for 7-Zip (``7z x -p<password> FILE``) or any WinZip-AES reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tranche.core.settings import SettingsError
from tranche.doctoral.app import SPEC
from tranche.doctoral.archive.format import (
    MANIFEST,
    ArchiveError,
    extract,
    password,
    read_manifest,
)
from tranche.doctoral.archive.keys import ArchiveKeyError, Keyring, new_key
from tranche.doctoral.jobs.archive import keyring_of

__all__ = ["NAME", "app"]

NAME = "archive"
app = typer.Typer(
    no_args_is_help=True, help="archiveJob's encrypted archives: open, password, restore."
)

Archive = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An archive .zip.")]


def _keyring() -> Keyring:
    try:
        return keyring_of(SPEC.load_settings())
    except (SettingsError, ArchiveKeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(1)


@app.command("password")
def password_cmd(file: Archive) -> None:
    """Print the archive's ZIP password (for 7-Zip: 7z x -pPASSWORD FILE)."""
    try:
        typer.echo(password(file, _keyring()))
    except (ArchiveError, ArchiveKeyError) as exc:
        raise _fail(exc) from None


@app.command("open")
def open_cmd(
    file: Archive,
    out: Annotated[Path, typer.Option("--out", help="Directory to extract into.")],
) -> None:
    """Extract the archive into OUT, checking every file's SHA-256 and size against its manifest."""
    keyring = _keyring()
    try:
        manifest = read_manifest(file, keyring)
        members = [e["member"] for e in manifest.get("files", [])]
        targets = {m: out / m for m in [MANIFEST, *members]}
        extract(file, keyring, targets)
    except (ArchiveError, ArchiveKeyError, FileExistsError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(
        f"{manifest['entityType']} {manifest['entityId']}: {len(members)} file(s) verified "
        f"(SHA-256 and size) and extracted into {out}"
    )


@app.command("restore")
def restore_cmd(file: Archive) -> None:
    """Put the archived documents back where they were; refuses to overwrite any file."""
    keyring = _keyring()
    try:
        manifest = read_manifest(file, keyring)
        targets = {
            e["member"]: Path(e["path"])
            for e in manifest.get("files", [])
            if e.get("removable") and e.get("path")
        }
        extract(file, keyring, targets)
    except (ArchiveError, ArchiveKeyError, FileExistsError, OSError) as exc:
        raise _fail(exc) from None
    for member, target in targets.items():
        typer.echo(f"restored {member} -> {target}")
    typer.echo(f"{len(targets)} file(s) restored, each verified against the manifest")


@app.command("new-key")
def new_key_cmd(
    key_id: Annotated[str, typer.Argument(help="Id of the new key, e.g. 2026-01.")],
) -> None:
    """Print a new random master key as an `id=base64key` line for the key file."""
    typer.echo(f"{key_id}={new_key()}")
