"""What the school's administrator and the inscription service's owner see of the alert job.

Defended doctorants are left alone, a manual unblock sticks, the director reads
a text written to the director, and the old batch's rule is still there as a
setting, without its gap. Every engine; the events are read from the outbox.
The databases are shared by the module's tests: each test runs at its own
instant and looks only at its own doctorants.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from tests.doctoral.factories import months_before
from tests.doctoral.harness import Running
from tranche.batch import BatchListener, BatchStatus, StepContext
from tranche.batch.joining import shared_schema
from tranche.core.db import Database
from tranche.core.outbox import outbox_table
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I

RUN = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)
JOB = "dureeDoctoratAlertJob"


def years_ago(years: float) -> datetime:
    return datetime.combine(
        RUN.date() - timedelta(days=int(years * 365.25) + 1), datetime.min.time()
    ) + timedelta(hours=9)


_runs = itertools.count(1)


async def run(running: Running, at: datetime | None = None) -> Any:
    """One run, as a new job instance (the module's tests share the databases)."""
    at = (at or RUN) + timedelta(seconds=next(_runs))
    runtime = running.runtime
    execution = await runtime.launcher.run(
        runtime.spec(JOB).job, runtime.parameters("pytest", at=at)
    )
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    return execution


async def events(running: Running, doctorants: set[int]) -> list[dict[str, Any]]:
    async with running.runtime.sources.batchdb.sessions() as s:
        payloads = (
            await s.execute(
                sa.select(outbox_table.c.payload)
                .where(outbox_table.c.topic == "notifications")
                .order_by(outbox_table.c.seq)
            )
        ).scalars()
        found = [json.loads(p) for p in payloads]
    return [e for e in found if e["donnees"].get("doctorantId") in doctorants]


async def blocked(running: Running, inscription: int) -> bool:
    async with running.runtime.sources.inscription_db.sessions() as s:
        return bool(
            (
                await s.execute(
                    sa.select(I.inscriptions.c.bloque_re_inscription).where(
                        I.inscriptions.c.id == inscription
                    )
                )
            ).scalar_one()
        )


async def defense(db: Database, doctorant: int, request: str, **extra: str) -> None:
    """A defense request in ``request`` status, with a defense row or authorisation if given."""
    async with db.transaction() as s:
        rid = (
            await s.execute(
                sa.insert(D.defense_requests).values(
                    doctorant_id=doctorant, status=request, submission_date=datetime(2025, 1, 5)
                )
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        if "defense" in extra:
            await s.execute(
                sa.insert(D.defenses).values(
                    defense_request_id=rid,
                    status=extra["defense"],
                    defense_date=datetime(2025, 2, 1, 14),
                    publication_recommended=False,
                )
            )
        if "autorisation" in extra:
            await s.execute(
                sa.insert(D.autorisations_soutenance).values(
                    defense_request_id=rid, statut=extra["autorisation"]
                )
            )


async def test_defended_doctorants_get_no_alert_and_no_block(make_runtime: Any) -> None:
    running: Running = await make_runtime()
    portal, defensedb = running.portal, running.runtime.sources.defensedb
    director = await portal.user("ROLE_DIRECTEUR")
    cases = {
        "completed request": ("COMPLETED", {}),
        "completed defense": ("SCHEDULED", {"defense": "COMPLETED"}),
        "scheduled": ("SCHEDULED", {"defense": "SCHEDULED"}),
        "authorised": ("REPORTS_RECEIVED", {"autorisation": "AUTORISE"}),
        "cancelled": ("SCHEDULED", {"defense": "CANCELLED"}),
        "rejected": ("REJECTED", {}),
        "submitted": ("SUBMITTED", {}),
    }
    enrollment: dict[str, int] = {}
    doctorant: dict[str, int] = {}
    for name, (request, extra) in cases.items():
        doc = await portal.user()
        doctorant[name] = doc
        enrollment[name] = await portal.enrollment(doc, director, years_ago(6.5))
        await defense(defensedb, doc, request, **extra)

    await run(running)

    alerted = {e["donnees"]["doctorantId"] for e in await events(running, set(doctorant.values()))}
    for name in ("completed request", "completed defense", "scheduled", "authorised"):
        assert doctorant[name] not in alerted, name
        assert not await blocked(running, enrollment[name]), name
    # A cancelled defense, a rejected or a merely submitted request is no defense.
    for name in ("cancelled", "rejected", "submitted"):
        assert doctorant[name] in alerted, name
        assert await blocked(running, enrollment[name]), name
    async with running.runtime.sources.inscription_db.sessions() as s:
        rows = set((await s.execute(sa.select(I.alertes_duree.c.inscription_id))).scalars())
    assert rows & set(enrollment.values()) == {
        enrollment[n] for n in ("cancelled", "rejected", "submitted")
    }


async def test_a_manual_unblock_sticks(make_runtime: Any) -> None:
    running: Running = await make_runtime()
    portal = running.portal
    doc = await portal.user()
    eid = await portal.enrollment(doc, await portal.user("ROLE_DIRECTEUR"), years_ago(6.2))
    await run(running)
    assert await blocked(running, eid)

    # The administration lifts the block by hand (and marks the owner's alert treated).
    async with running.runtime.sources.inscription_db.transaction() as s:
        await s.execute(
            sa.update(I.inscriptions)
            .where(I.inscriptions.c.id == eid)
            .values(bloque_re_inscription=False)
        )
    await run(running, RUN + timedelta(days=7))
    await run(running, RUN + timedelta(days=14))
    assert not await blocked(running, eid)
    assert len(await events(running, {doc})) == 2  # the doctorant and the director, once


async def test_the_director_reads_a_text_written_to_the_director(make_runtime: Any) -> None:
    running: Running = await make_runtime()
    portal = running.portal
    doc = await portal.user(email="ines.haddad@etu.univ-exemple.fr")
    director = await portal.user("ROLE_DIRECTEUR", email="pr.benali@univ-exemple.fr")
    await portal.enrollment(doc, director, years_ago(2.6))
    await run(running)
    by_role = {e["donnees"]["destinataireRole"]: e for e in await events(running, {doc})}
    mine, theirs = by_role["DOCTORANT"], by_role["DIRECTEUR_THESE"]
    assert mine["destinataire"] == "ines.haddad@etu.univ-exemple.fr"
    assert theirs["destinataire"] == "pr.benali@univ-exemple.fr"
    assert mine["sujet"] == "Rappel : votre doctorat approche 3 ans"
    assert "Votre doctorat a commencé le" in mine["messageTexte"]
    name = mine["donnees"]["doctorantNom"]
    assert theirs["sujet"] == f"Rappel : le doctorat de {name} approche 3 ans"
    assert theirs["messageTexte"].startswith(f"Bonjour {theirs['donnees']['directeurNom']},")
    assert f"Votre doctorant(e) {name}" in theirs["messageTexte"]
    assert "votre doctorat" not in theirs["messageTexte"].lower()
    assert mine["donnees"]["actionRequise"] != theirs["donnees"]["actionRequise"]
    assert mine["donnees"]["alerteType"] == "APPROCHE_3_ANS"


async def test_the_old_rule_is_a_setting_without_its_gap(make_runtime: Any) -> None:
    running: Running = await make_runtime(duree_alert_rule="batch-service")
    portal = running.portal
    director = await portal.user("ROLE_DIRECTEUR")
    at_32 = await portal.user()
    at_50 = await portal.user()
    at_50_derogation = await portal.user()
    await portal.enrollment(at_32, director, months_before(RUN.date(), 32.9))
    await portal.enrollment(at_50, director, months_before(RUN.date(), 50))
    await portal.enrollment(
        at_50_derogation, director, months_before(RUN.date(), 50), derogation=True
    )
    await run(running)
    mine = await events(running, {at_32, at_50, at_50_derogation})
    found = {(e["donnees"]["doctorantId"], e["donnees"]["alerteType"]) for e in mine}
    # 50 months without derogation fell in the old 36-68 hole; now they are told, once.
    assert found == {(at_50, "APPROCHE_3_ANS")}
    texts = {e["sujet"] for e in mine}
    assert "Rappel : votre doctorat a dépassé 3 ans" in texts


class FailNextBatchdbCommit(BatchListener):
    """Armed before the first chunk: the chunk's batchdb commit then fails (at the
    connection, where the engine commits its Core transaction), after inscription_db
    committed when the two are separate (what a process dying between the two commits
    leaves)."""

    def __init__(self) -> None:
        self.armed = False
        self.fired = False

    async def before_chunk(self, ctx: StepContext) -> None:
        if not self.fired and ctx.step_execution.step_name == "checkDureeDoctoratStep":
            self.armed = True

    def commit(self, conn: Any) -> None:
        if self.armed:
            self.armed, self.fired = False, True
            # The chunk's batchdb work is lost, as with the process: the engine's check
            # whether a failed commit landed must then find that it did not.
            conn.connection.dbapi_connection.rollback()
            raise RuntimeError("process died between the owner's commit and the checkpoint")


async def test_owner_side_counts_survive_a_death_between_the_two_commits(
    make_runtime: Any,
) -> None:
    probe = FailNextBatchdbCommit()
    running: Running = await make_runtime(listeners=[probe])
    batch_engine = running.runtime.sources.batchdb.engine.sync_engine
    event.listen(batch_engine, "commit", probe.commit)
    try:
        await _die_between_commits(running, probe)
    finally:
        event.remove(batch_engine, "commit", probe.commit)


async def _die_between_commits(running: Running, probe: FailNextBatchdbCommit) -> None:
    runtime, portal = running.runtime, running.portal
    director = await portal.user("ROLE_DIRECTEUR")
    exceeded = await portal.enrollment(await portal.user(), director, years_ago(6.3))
    await portal.enrollment(await portal.user(), director, years_ago(2.7))
    at = RUN + timedelta(days=300)
    first = await runtime.launcher.run(runtime.spec(JOB).job, runtime.parameters("pytest", at=at))
    assert first.status is BatchStatus.FAILED and probe.fired
    sources = runtime.sources
    joins, _schema = shared_schema(sources.batchdb.engine, sources.inscription_db.engine)
    # Separate databases: the owner's side is committed, uncounted. One transaction (MariaDB,
    # one server and account): nothing of the chunk landed.
    assert await blocked(running, exceeded) is not joins

    second = await runtime.launcher.wait(await runtime.launcher.restart(first.id))
    assert second.status is BatchStatus.COMPLETED, second.exit_status
    counts = counts_of(second)
    # Found present on the restart, so not written again, yet counted: read back.
    assert counts["alertesEnregistrees"] >= 2 and counts["reinscriptionsBloquees"] >= 1
    assert counts.get("notifications", 0) >= 4, counts  # and the reminders went out
