"""``seed-demo`` writes the files its rows reference, and archiveJob then has real work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.doctoral.archive.data import KEY
from tranche.cli import app


def test_seed_demo_then_archive_job_archives_and_frees_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    monkeypatch.setenv("DOCTORAL_ARCHIVE_KEYS", json.dumps({"demo": KEY}))
    runner = CliRunner()
    seeded = runner.invoke(app, ["doctoral", "seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    uploads = list((tmp_path / "uploads").rglob("*.pdf"))
    pvs = list((tmp_path / "proces-verbaux").glob("pv_defense_*.pdf"))
    assert uploads and pvs

    ran = runner.invoke(app, ["job", "run", "archiveJob"])
    assert ran.exit_code == 0, ran.output
    assert "enrollmentsArchived" in ran.output and "defensesArchived" in ran.output
    assert "bytesFreed" in ran.output
    archives = list((tmp_path / "archives").rglob("*.zip"))
    assert archives
    left = list((tmp_path / "uploads").rglob("*.pdf"))
    assert len(left) < len(uploads)
    # Defenses held within the year keep their procès-verbal; the older ones' PVs moved.
    assert len(list((tmp_path / "proces-verbaux").glob("pv_defense_*.pdf"))) < len(pvs)

    opened = runner.invoke(
        app, ["archive", "open", str(archives[0]), "--out", str(tmp_path / "opened")]
    )
    assert opened.exit_code == 0, opened.output
