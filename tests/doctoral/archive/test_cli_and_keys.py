"""``tranche archive open|password|restore`` with rotated keys, as an administrator years later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.doctoral.archive.data import KEY, KEY_2, OLD, RUN, scene, sha256
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.cli import app
from tranche.doctoral.archive.format import read_header, write_archive
from tranche.doctoral.archive.keys import ArchiveKeyError, Keyring, derive_password, parse_key


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS", "DOCTORAL_ARCHIVE_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    return monkeypatch


async def test_rotated_keys_open_old_and_new_archives_and_restore_refuses_to_overwrite(
    sqlite_databases: Databases, tmp_path: Path, cli_env: pytest.MonkeyPatch
) -> None:
    async with scene(sqlite_databases, tmp_path) as world:
        first = await world.enrollment("VALIDE", validated=OLD)
        originals = dict(world.files)
        assert (await world.run()).status is BatchStatus.COMPLETED
    async with scene(
        sqlite_databases, tmp_path, archive_keys={"k1": KEY, "k2": KEY_2}, archive_key_id="k2"
    ) as world:
        second = await world.enrollment("VALIDE", validated=OLD)
        assert (await world.run(RUN.replace(hour=4))).status is BatchStatus.COMPLETED
    (old,) = world.archives.rglob(f"enrollment_{first}_*.zip")
    (new,) = world.archives.rglob(f"enrollment_{second}_*.zip")
    assert (read_header(old).key_id, read_header(new).key_id) == ("k1", "k2")

    runner = CliRunner()
    cli_env.setenv("DOCTORAL_ARCHIVE_KEYS", json.dumps({"k1": KEY, "k2": KEY_2}))
    for archive in (old, new):
        out = tmp_path / f"out-{archive.stem}"
        opened = runner.invoke(app, ["archive", "open", str(archive), "--out", str(out)])
        assert opened.exit_code == 0, opened.output
        assert "verified" in opened.output
        assert (out / "manifest.json").is_file()
    extracted = sorted((tmp_path / f"out-{old.stem}" / "files").iterdir())
    assert sorted(sha256(p) for p in extracted) == sorted(originals.values())

    # The printed password is the HKDF derivation of the archive's key and salt.
    shown = runner.invoke(app, ["archive", "password", str(old)])
    header = read_header(old)
    assert shown.output.strip() == derive_password(parse_key(KEY, "t"), header.salt)

    restored = runner.invoke(app, ["archive", "restore", str(old)])
    assert restored.exit_code == 0, restored.output
    for path, digest in originals.items():
        assert sha256(Path(path)) == digest
    again = runner.invoke(app, ["archive", "restore", str(old)])
    assert again.exit_code == 1 and "refusing to overwrite" in again.output

    # Once k1 is dropped from the settings, its archives say which key they need.
    cli_env.setenv("DOCTORAL_ARCHIVE_KEYS", json.dumps({"k2": KEY_2}))
    refused = runner.invoke(app, ["archive", "password", str(old)])
    assert refused.exit_code == 1 and "key 'k1', which is not configured" in refused.output


def test_without_keys_the_cli_names_the_missing_key(
    cli_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cli_env.delenv("DOCTORAL_ARCHIVE_KEYS", raising=False)
    archive = tmp_path / "enrollment_1.zip"
    write_archive(
        archive, {"entityType": "ENROLLMENT", "entityId": 1}, [], "k1", parse_key(KEY, "t")
    )
    shown = CliRunner().invoke(app, ["archive", "password", str(archive)])
    assert shown.exit_code == 1
    assert "key 'k1', which is not configured (configured: none)" in shown.output
    not_ours = tmp_path / "other.zip"
    not_ours.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    other = CliRunner().invoke(app, ["archive", "password", str(not_ours)])
    assert other.exit_code == 1 and "not a tranche doctoral archive" in other.output


def test_key_file_lines_and_bad_keys_are_reported_by_their_place(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# rotated yearly\n2025={KEY}\n2026={KEY_2}\n")
    ring = Keyring.load({}, key_file, None)
    assert ring.current()[0] == "2026" and set(ring.keys) == {"2025", "2026"}
    key_file.write_text("2025=c2hvcnQ=\n")
    with pytest.raises(ArchiveKeyError, match=r"line 1: the key is 5 bytes, at least 32"):
        Keyring.load({}, key_file, None)
    with pytest.raises(ArchiveKeyError, match="DOCTORAL_ARCHIVE_KEYS"):
        Keyring.load({}, None, None).current()
    new = CliRunner().invoke(app, ["archive", "new-key", "2027-01"])
    line = new.output.strip()
    assert line.startswith("2027-01=") and len(parse_key(line.split("=", 1)[1], "t")) == 32
