"""dureeDoctoratAlertJob with inscription_db and batchdb in one transaction per chunk.

On MariaDB, with inscription_db on batchdb's server under the same account (as the
runbook's one ``batch`` account is, and the test databases are), each chunk's
``alertes_duree`` rows and re-enrollment blocks run on batchdb's connection,
schema-qualified, and commit with the chunk's ledger, outbox rows and checkpoint: nothing
commits on inscription_db's own connections. With the setting off, inscription_db commits
each chunk on its own, before batchdb, as with separate servers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from tests.doctoral.harness import Running
from tranche.batch import BatchStatus
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.models import alerte_duree_envoyee
from tranche.doctoral.tables import inscription_db as I

# Schemas on one server: MariaDB only (SQLite files and PostgreSQL databases cannot join).
pytestmark = pytest.mark.parametrize("databases", ["mariadb"], indirect=True)

RUN = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)


def years_ago(years: float) -> datetime:
    return datetime.combine(
        RUN.date() - timedelta(days=int(years * 365.25) + 1), datetime.min.time()
    ) + timedelta(hours=9)


async def _run_counting_owner_commits(running: Running, at: datetime) -> tuple[int, Any]:
    """One run of the job; the commits made on inscription_db's own connections meanwhile."""
    runtime, portal = running.runtime, running.portal
    director = await portal.user("ROLE_DIRECTEUR")
    for years in (6.3, 5.7, 2.7, 1.0):
        await portal.enrollment(await portal.user(), director, years_ago(years))
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    engine = runtime.sources.inscription_db.engine.sync_engine
    event.listen(engine, "commit", count)
    try:
        spec = runtime.spec("dureeDoctoratAlertJob")
        execution = await runtime.launcher.run(spec.job, runtime.parameters("pytest", at=at))
    finally:
        event.remove(engine, "commit", count)
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    return commits, execution


async def _owner_and_ledger_rows(running: Running) -> tuple[int, int, int]:
    sources = running.runtime.sources
    async with sources.inscription_db.sessions() as s:
        owner = (await s.execute(sa.select(sa.func.count()).select_from(I.alertes_duree))).scalar()
        blocked = (
            await s.execute(
                sa.select(sa.func.count()).where(I.inscriptions.c.bloque_re_inscription)
            )
        ).scalar()
    async with sources.batchdb.sessions() as s:
        ledger = (
            await s.execute(sa.select(sa.func.count()).select_from(alerte_duree_envoyee))
        ).scalar()
    return int(owner or 0), int(blocked or 0), int(ledger or 0)


async def test_owner_rows_commit_with_the_checkpoint_not_on_their_own(
    make_runtime: Any,
) -> None:
    running: Running = await make_runtime(duree_alert_chunk_size=2)
    before = await _owner_and_ledger_rows(running)
    commits, execution = await _run_counting_owner_commits(running, RUN)
    owner, blocked, ledger = await _owner_and_ledger_rows(running)
    assert commits == 0  # every owner write rode in batchdb's transaction
    counts = counts_of(execution)
    assert counts["alertesEnregistrees"] == owner - before[0] == 3
    assert counts["reinscriptionsBloquees"] == blocked - before[1] == 1
    assert ledger - before[2] == 3 and counts["notifications"] == 6


async def test_with_the_setting_off_inscription_db_commits_each_chunk_itself(
    make_runtime: Any,
) -> None:
    running: Running = await make_runtime(
        duree_alert_chunk_size=2, duree_alert_one_transaction=False
    )
    before = await _owner_and_ledger_rows(running)
    commits, execution = await _run_counting_owner_commits(running, RUN + timedelta(hours=1))
    owner, blocked, _ledger = await _owner_and_ledger_rows(running)
    assert commits >= 2  # the chunks holding the three alerts, each its own commit
    assert counts_of(execution)["alertesEnregistrees"] == owner - before[0] == 3
    assert blocked - before[1] == 1
