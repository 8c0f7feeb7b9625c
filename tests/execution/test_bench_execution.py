"""``tranche bench execution`` runs end to end and reports what it promises (no timing).

Every stage at once takes about a minute (five services started in turn): that run is
``slow``; the default suite runs the size comparison alone, which every stage builds on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from tranche.commands.bench import app

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def _invoke(kafka_bootstrap: str, postgres_url: str, *options: str) -> dict[str, Any]:
    server = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    args = ["execution", "--dsn", server, "--bootstrap", kafka_bootstrap, *options]
    result = CliRunner().invoke(app, [*args, "--no-report", "--json"])
    assert result.exit_code == 0, result.output[-3000:]
    out: dict[str, Any] = orjson.loads(result.stdout)
    return out


def test_a_short_run_compares_each_size_on_every_path(
    kafka_bootstrap: str, postgres_url: str
) -> None:
    out = _invoke(
        kafka_bootstrap,
        postgres_url,
        *("--sizes", "3", "--samples", "1", "--clients", "", "--pools", "", "--inserts", ""),
        "--no-profile",
    )
    [size] = out["sizes"]
    assert size["n"] == 3
    for key in ("new_p50_ms", "old_p50_ms", "floor_p50_ms"):
        assert size[key] > 0, key
    for key in ("new_over_floor", "old_over_new", "new_asgi_p50_ms", "floor_outbox_p50_ms"):
        assert key in size
    assert (out["concurrency"], out["pools"], out["inserts"]) == ([], [], [])
    assert "profile" not in out
    ratios = out["ratios"]
    assert ratios["items"] == 3
    assert ratios["bulk_http_over_floor"] == size["new_over_floor"]
    assert ratios["bulk_http_publish_wait_over_floor"] == size["new_wait_over_floor"]


@pytest.mark.slow
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


def test_quick_runs_only_the_issue_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--quick`` asks for the 1 000-item comparison alone and writes no report."""
    import tranche.bench.execution as bench

    seen: dict[str, Any] = {}

    async def fake_run(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"ratios": {"items": 1000}}

    def no_report(*_args: Any) -> None:
        raise AssertionError("--quick must not write docs/benchmarks.md")

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(bench, "write_section", no_report)
    monkeypatch.setattr(bench, "chart", no_report)
    result = CliRunner().invoke(app, ["execution", "--quick", "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    assert seen["sizes"] == [1000]
    assert seen["samples"] == 10
    assert (seen["clients"], seen["pools"], seen["inserts"]) == ([], [], [])
    assert seen["profile"] is False
    assert orjson.loads(result.stdout) == {"ratios": {"items": 1000}}
