"""``tranche bench execution`` runs end to end and reports what it promises (no timing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tranche.commands.bench import app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def test_a_tiny_run_reports_every_key(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    server = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    profile = tmp_path / "profile.txt"
    result = CliRunner().invoke(
        app,
        [
            "execution",
            "--dsn",
            server,
            "--bootstrap",
            kafka_bootstrap,
            "--sizes",
            "3,7",
            "--samples",
            "2",
            "--clients",
            "2",
            "--batches-per-client",
            "1",
            "--batch",
            "20",
            "--pools",
            "2",
            "--inserts",
            "",
            "--profile-file",
            str(profile),
            "--no-report",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    out: dict[str, Any] = orjson.loads(result.stdout)
    assert [s["n"] for s in out["sizes"]] == [3, 7]
    for size in out["sizes"]:
        for key in ("n", "new_p50_ms", "old_p50_ms", "floor_p50_ms"):
            assert size[key] > 0, key
        for key in ("new_over_floor", "old_over_new", "new_asgi_p50_ms", "new_wait_p95_ms"):
            assert key in size
        for key in ("floor_outbox_p50_ms", "new_over_floor_outbox"):
            assert key in size
    [run] = out["concurrency"]
    assert run["clients"] == 2
    assert run["errors"] == 0
    assert run["executions"] == 40
    assert run["published"] == 40  # every event reached the broker and was stamped
    for key in ("executions_per_s", "p99_publish_ms", "drain_ms"):
        assert run[key] is not None
    [pool] = out["pools"]
    assert pool["pool_size"] == 2
    assert pool["errors"] == 0
    stages = {s["stage"] for s in out["profile"]["stages"]}
    assert "execution rows: reserve ids + COPY" in stages
    assert profile.read_text().strip()


def test_bad_sizes_are_refused() -> None:
    result = CliRunner().invoke(app, ["execution", "--sizes", "10,abc", "--no-report"])
    assert result.exit_code != 0
    assert "--sizes" in result.output
