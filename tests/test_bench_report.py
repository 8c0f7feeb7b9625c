from __future__ import annotations

from pathlib import Path

from tranche.bench._report import write_section


def test_sections_are_replaced_in_place_and_others_kept(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    write_section("a", "## A\nfirst", doc)
    write_section("b", "## B\nonly", doc)
    write_section("a", "## A\nsecond", doc)
    text = doc.read_text()
    assert "second" in text and "first" not in text
    assert text.index("## A") < text.index("## B")
    assert text.count("<!-- bench:a -->") == 1
