"""archiveJob on SQLite and MariaDB: the right candidates only, archives that open, nothing lost."""
# ruff: noqa: ASYNC221, ASYNC240  (a test may block: it waits for nothing else)

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.doctoral.archive.data import OLD, RECENT, RUN, Scene, scene, sha256
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.doctoral.archive.format import password, read_header, verify
from tranche.doctoral.archive.models import (
    archive_audit_trail,
    defense_archive,
    inscription_archive,
)
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.tables import inscription_db as I


async def _portal(world: Scene) -> dict[str, int]:
    """Candidates and look-alikes that must stay (cutoff: 2025-06-01 03:00)."""
    (world.pv).mkdir(parents=True, exist_ok=True)
    return {
        "valid_old": await world.enrollment("VALIDE", validated=OLD, blob=b"scan-justificatif"),
        "valid_recent": await world.enrollment("VALIDE", validated=RECENT),
        "rejected_old": await world.enrollment("REJETE", rejected=OLD),
        "rejected_recent": await world.enrollment("REJETE", rejected=RECENT),
        "rejected_undated": await world.enrollment("REJETE"),
        "pending_old": await world.enrollment("EN_ATTENTE_ADMIN"),
        "defense_old": await world.defense("COMPLETED", OLD),
        "defense_no_pv": await world.defense("COMPLETED", OLD, pv=False),
        "defense_cancelled": await world.defense("CANCELLED", OLD),
        "defense_recent": await world.defense("COMPLETED", RECENT),
    }


async def test_archives_exactly_the_closed_records_and_their_files(world: Scene) -> None:
    ids = await _portal(world)
    before = dict(world.files)

    execution = await world.run()

    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert await world.ids(inscription_archive) == {ids["valid_old"], ids["rejected_old"]}
    assert await world.ids(defense_archive) == {ids["defense_old"]}
    # The owners' rows stay: their services still read them.
    async with world.runtime.sources.inscription_db.sessions() as s:
        assert len((await s.execute(sa.select(I.inscriptions.c.id))).all()) == 6

    async with world.runtime.sources.batchdb.sessions() as s:
        rows = (await s.execute(sa.select(inscription_archive))).mappings().all()
        trail = (await s.execute(sa.select(archive_audit_trail))).mappings().all()
    archived_files: set[str] = set()
    freed = 0
    for row in rows:
        archive = Path(row["archive_location"])
        assert archive.is_file() and row["originals_removed_at"] is not None
        assert row["archive_sha256"] == sha256(archive) and row["key_id"] == "k1"
        manifest = verify(archive, world.keyring())
        assert manifest["record"]["inscription"]["id"] == row["id"]
        for entry in manifest["files"]:
            if entry.get("removable"):
                assert before[entry["path"]] == entry["sha256"]
                assert not Path(entry["path"]).exists()
                archived_files.add(entry["path"])
                freed += entry["size"]
    valid = next(r for r in rows if r["id"] == ids["valid_old"])
    assert valid["files_count"] == 4  # 2 uploads, the attestation, the derogation's blob
    assert valid["has_derogation"] is False and valid["discipline"] == "Informatique"
    rejected = next(r for r in rows if r["id"] == ids["rejected_old"])
    assert rejected["status"] == "REJETE" and rejected["date_rejection"] == OLD
    assert rejected["motif_refus"] == "Dossier incomplet"
    derogation = valid["document"]["record"]["derogation_requests"][0]
    assert derogation["documents_justificatifs"]["size"] == len(b"scan-justificatif")

    # Every file not archived is still there, untouched.
    for path, digest in before.items():
        if path in archived_files or f"pv_defense_{ids['defense_old']}_" in path:
            continue
        assert sha256(Path(path)) == digest, path
    assert not any(Path(p).exists() for p in before if f"pv_defense_{ids['defense_old']}_" in p)

    actions = sorted((t["entity_type"], t["action"]) for t in trail)
    assert actions == sorted(
        [("ENROLLMENT", "ARCHIVED"), ("ENROLLMENT", "ORIGINALS_REMOVED")] * 2
        + [("DEFENSE", "ARCHIVED"), ("DEFENSE", "ORIGINALS_REMOVED")]
    )
    counts = counts_of(execution)
    assert counts["enrollmentsArchived"] == 2 and counts["defensesArchived"] == 1
    assert counts["bytesFreed"] == freed + 12_000  # the enrollments' files and the defense's PV
    assert counts["bytesFreed"] == sum(
        t["uncompressed_size"] for t in trail if t["action"] == "ORIGINALS_REMOVED"
    )
    assert not list(world.archives.rglob("*.tmp"))

    again = await world.run(RUN.replace(minute=5))
    assert again.status is BatchStatus.COMPLETED
    assert "enrollmentsArchived" not in counts_of(again)
    assert "defensesArchived" not in counts_of(again)
    assert len(list(world.archives.rglob("*.zip"))) == 3


async def test_seven_zip_opens_an_archive_and_the_hashes_match(
    world: Scene, tmp_path: Path
) -> None:
    if shutil.which("7z") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("7z (Debian p7zip-full) is required under CI")
        pytest.skip("7z not installed (Debian p7zip-full; scripts/bootstrap.sh installs it)")
    iid = await world.enrollment("VALIDE", validated=OLD, blob=b"inline")
    originals = dict(world.files)
    assert (await world.run()).status is BatchStatus.COMPLETED
    (archive,) = world.archives.rglob(f"enrollment_{iid}_*.zip")
    assert read_header(archive).key_id == "k1"
    out = tmp_path / "7z-out"
    result = subprocess.run(
        ["7z", "x", f"-p{password(archive, world.keyring())}", f"-o{out}", str(archive)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = verify(archive, world.keyring())
    for entry in manifest["files"]:
        extracted = out / entry["member"]
        assert sha256(extracted) == entry["sha256"]
        assert extracted.stat().st_size == entry["size"]
        if entry.get("removable"):
            assert originals[entry["path"]] == entry["sha256"]
    assert (out / "manifest.json").is_file()
    # A wrong password opens nothing: the members really are encrypted.
    wrong = subprocess.run(
        ["7z", "t", "-pwrong-password", str(archive)], capture_output=True, text=True, check=False
    )
    assert wrong.returncode != 0


async def test_without_a_master_key_the_job_fails_clearly_and_touches_nothing(
    fresh: Databases, tmp_path: Path
) -> None:
    async with scene(fresh, tmp_path, archive_keys={}) as world:
        await world.enrollment("VALIDE", validated=OLD)
        before = dict(world.files)
        execution = await world.run()
        assert execution.status is BatchStatus.FAILED
        assert "DOCTORAL_ARCHIVE_KEYS" in (execution.exit_status.exit_description or "")
        assert await world.ids(inscription_archive) == set()
        assert all(sha256(Path(p)) == d for p, d in before.items())
        assert not world.archives.exists() or not list(world.archives.rglob("*"))


async def test_a_record_with_a_missing_or_outside_file_is_skipped_and_stays_a_candidate(
    world: Scene,
) -> None:
    good = await world.enrollment("VALIDE", validated=OLD)
    missing = await world.enrollment("VALIDE", validated=OLD)
    outside = await world.enrollment("VALIDE", validated=OLD)
    lost = next(p for p in world.files if f"cv_{missing}_0" in p)
    Path(lost).unlink()
    async with world.runtime.sources.inscription_db.transaction() as s:
        await s.execute(
            sa.update(I.documents_inscription)
            .where(I.documents_inscription.c.inscription_id == outside)
            .values(chemin_fichier="../../etc/hostname")
        )
    execution = await world.run()
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert await world.ids(inscription_archive) == {good}
    assert execution.step_executions[0].process_skip_count == 2
    # The skipped records keep every file they still have.
    for path, digest in world.files.items():
        name = Path(path).name
        if path != lost and not name.startswith((f"cv_{good}_", f"attestation_{good}_")):
            assert sha256(Path(path)) == digest, path
    assert Path("/etc/hostname").exists()
