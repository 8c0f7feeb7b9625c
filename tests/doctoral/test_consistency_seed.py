"""``seed-demo`` plants a few inconsistencies of each kind, and the job finds and fixes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from tests.doctoral.consistency_world import RUN
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.cli import app
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.seed import seed_portal
from tranche.doctoral.sources import FOREIGN


async def test_the_demo_gives_every_check_work_and_a_second_run_none(
    sqlite_databases: Databases, tmp_path: Path
) -> None:
    settings = sqlite_databases.settings(
        uploads_dir=tmp_path / "uploads", reports_dir=tmp_path / "reports"
    )
    urls = {n: sqlite_databases.urls[n] for n in FOREIGN}
    report = await seed_portal(
        urls, settings.pool(), 1, RUN, files=(tmp_path / "uploads", tmp_path / "pv")
    )
    assert report.counts["inconsistencies planted (orphan files)"] == 3
    runtime = Runtime.build(settings, CollectorRegistry())
    try:
        job = runtime.spec("dataConsistencyJob").job
        first = await runtime.launcher.run(job, runtime.parameters("demo", at=RUN))
        assert first.status is BatchStatus.COMPLETED, first.exit_status
        counts = first.context["counts"]
        assert counts["anomalies.utilisateurInexistant.corrected"] == 3
        assert counts["anomalies.soutenanceSansInscription.manual"] == 3
        assert counts["anomalies.roles.corrected"] >= 3
        assert counts["anomalies.fichiersOrphelins.corrected"] == 3
        # No SMTP in this test: the stuck notifications wait for a configured server.
        assert counts["notificationsNonRenvoyeesSansSmtp"] == 1
        assert counts["fichiersRecentsIgnores"] == 1
        assert len(list((tmp_path / "reports").glob("anomaly_report_*.pdf"))) == 1

        second = await runtime.launcher.run(
            job, runtime.parameters("demo", at=RUN.replace(minute=10))
        )
        assert not any(k.startswith("anomalies.") for k in second.context["counts"])
    finally:
        await runtime.close()


def test_cli_dry_run_then_real_run_on_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("JWT_SECRET", "KAFKA_BOOTSTRAP_SERVERS", "DOCTORAL_SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCTORAL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCTORAL_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("DOCTORAL_LOG_JSON", "false")
    runner = CliRunner()
    assert runner.invoke(app, ["doctoral", "seed-demo"]).exit_code == 0
    orphans = sorted(p.name for p in (tmp_path / "uploads").glob("autre_*"))
    assert len(orphans) == 3

    dry = runner.invoke(app, ["job", "run", "dataConsistencyJob", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "anomalies.fichiersOrphelins.manual 3" in dry.output
    assert sorted(p.name for p in (tmp_path / "uploads").glob("autre_*")) == orphans
    assert not (tmp_path / "reports").exists()

    real = runner.invoke(app, ["job", "run", "dataConsistencyJob"])
    assert real.exit_code == 0, real.output
    assert "anomalies.fichiersOrphelins.corrected 3" in real.output
    assert sorted(p.name for p in (tmp_path / "uploads" / "orphelins").iterdir()) == orphans
    assert len(list((tmp_path / "reports").glob("anomaly_report_*.pdf"))) == 1

    refused = runner.invoke(app, ["job", "run", "tokenCleanupJob", "--dry-run"])
    assert refused.exit_code == 2 and "no dry run" in refused.output
