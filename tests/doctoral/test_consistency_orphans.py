"""Orphaned uploads: a referenced file is never moved (property), nothing is ever lost."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tranche.doctoral.consistency.orphans import (
    QUARANTINE,
    orphans,
    quarantine,
    reference_tails,
    scan,
)

NOW = datetime(2025, 3, 17, 23, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)

names = st.from_regex(r"[a-z]{2,8}_[0-9]{3}_[a-z0-9]{4}\.(pdf|png|docx)", fullmatch=True)
folders = st.sampled_from(["", "attestations/", "sous/dossier/"])
# How inscription-service may have stored the path of a file at uploads/<rel>.
forms = st.sampled_from(
    ["{rel}", "./uploads/{rel}", "uploads/{rel}", "/srv/inscription/uploads/{rel}", "{win}"]
)


@st.composite
def uploads(draw: st.DrawFn) -> tuple[dict[str, tuple[bool, float]], list[str]]:
    """Files (rel → referenced?, age in hours) and the stored paths referencing some."""
    rels = draw(
        st.lists(st.tuples(folders, names).map("".join), min_size=1, max_size=25, unique=True)
    )
    files: dict[str, tuple[bool, float]] = {}
    stored = []
    for rel in rels:
        referenced = draw(st.booleans())
        age = draw(st.sampled_from([0.5, 23.9, 24.1, 72.0]))
        files[rel] = (referenced, age)
        if referenced:
            form = draw(forms)
            win = "C:\\inscription\\uploads\\" + rel.replace("/", "\\")
            stored.append(form.format(rel=rel, win=win))
    return files, stored


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uploads(), st.booleans())
def test_referenced_files_are_never_moved_and_nothing_is_lost(
    case: tuple[dict[str, tuple[bool, float]], list[str]], taken: bool
) -> None:
    files, stored = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for rel, (_referenced, age) in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rel)
            stamp = (NOW - timedelta(hours=age)).timestamp()
            os.utime(path, (stamp, stamp))
            if taken:  # the same name already sits in the quarantine
                old = root / QUARANTINE / rel
                old.parent.mkdir(parents=True, exist_ok=True)
                old.write_text("earlier orphan")
        found, young = orphans(scan(root), reference_tails(stored), NOW, GRACE)
        moved = {f.relative: quarantine(root, f.relative) for f in found}

        for rel, (referenced, age) in files.items():
            stays = referenced or age < 24
            assert (root / rel).exists() == stays, rel
            if not stays:
                assert moved[rel].read_text() == rel  # moved whole, next to any earlier orphan
                assert moved[rel].is_relative_to(root / QUARANTINE)
        assert young == sum(1 for r, a in files.values() if not r and a < 24)
        if taken:
            assert all((root / QUARANTINE / rel).read_text() == "earlier orphan" for rel in files)
        expected = len(files) * (2 if taken else 1)
        assert sum(1 for p in root.rglob("*") if p.is_file()) == expected


def test_the_quarantine_is_not_scanned_and_collisions_get_a_suffix(tmp_path: Path) -> None:
    (tmp_path / QUARANTINE).mkdir()
    (tmp_path / QUARANTINE / "cv.pdf").write_text("first")
    (tmp_path / QUARANTINE / "cv_1.pdf").write_text("second")
    (tmp_path / "cv.pdf").write_text("third")
    assert [f.relative for f in scan(tmp_path)] == ["cv.pdf"]
    target = quarantine(tmp_path, "cv.pdf")
    assert target == tmp_path / QUARANTINE / "cv_2.pdf"
    assert target.read_text() == "third" and not (tmp_path / "cv.pdf").exists()
    assert (tmp_path / QUARANTINE / "cv.pdf").read_text() == "first"


def test_a_symlink_is_not_taken_for_an_upload(tmp_path: Path) -> None:
    (tmp_path / "real.pdf").write_text("x")
    (tmp_path / "link.pdf").symlink_to(tmp_path / "real.pdf")
    assert [f.relative for f in scan(tmp_path)] == ["real.pdf"]
