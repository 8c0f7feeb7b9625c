"""``seed-demo`` plants a few inconsistencies of each kind, and the job finds and fixes them."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.doctoral.conftest import Databases
from tests.doctoral.consistency_world import RUN
from tranche.batch import BatchStatus
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
    report = await seed_portal(urls, settings.pool(), 1, RUN, uploads=tmp_path / "uploads")
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
