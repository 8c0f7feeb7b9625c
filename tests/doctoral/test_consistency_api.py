"""The dry run from the admin API: ``POST /api/batch/jobs/dataConsistencyJob/run?dryRun=true``."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.doctoral.factories import Portal, admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import auth, finished, serving
from tranche.doctoral.tables import inscription_db as I


async def test_dry_run_over_http_changes_nothing_and_is_refused_where_unsupported(
    sqlite_databases: Databases, kafka_bootstrap: str, tmp_path: Path
) -> None:
    headers = auth(admin_token())
    async with serving(
        sqlite_databases, kafka_bootstrap, uploads_dir=tmp_path / "u", reports_dir=tmp_path / "r"
    ) as (app, client):
        sources = app.state.runtime.sources
        portal = Portal(sources.userdb, sources.inscription_db)
        enrollment = await portal.enrollment(8_000_001, await portal.user("ROLE_DIRECTEUR"), None)

        r = await client.post("/api/batch/jobs/tokenCleanupJob/run?dryRun=true", headers=headers)
        assert r.status_code == 400
        assert "dryRun" in r.json()["message"]

        r = await client.post("/api/batch/jobs/dataConsistencyJob/run?dryRun=true", headers=headers)
        assert r.status_code == 200, r.text
        body = await finished(client, r.json()["executionId"])
        assert body["status"] == "COMPLETED"
        assert body["counts"]["anomalies.utilisateurInexistant.manual"] == 1
        async with sources.inscription_db.sessions() as s:
            blocked = (
                await s.execute(
                    sa.select(I.inscriptions.c.bloque_re_inscription).where(
                        I.inscriptions.c.id == enrollment
                    )
                )
            ).scalar_one()
        assert blocked is False
        assert not (tmp_path / "r").exists()
