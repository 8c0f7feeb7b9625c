"""dataConsistencyJob end to end on SQLite and MariaDB, with a real SMTP receiver.

One deliberate inconsistency of each kind: each is detected and corrected or
reported, nothing else in the owners' databases changes, a second run finds
nothing, and a dry run changes nothing at all.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from email.header import decode_header, make_header
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.doctoral.consistency_world import (
    ADMIN,
    DIRECTOR,
    MISSING_DOCTORANT,
    RUN,
    TECH,
    World,
    changes,
    events,
    files_under,
    fresh,
    plant,
    snapshot,
)
from tests.doctoral.factories import Portal
from tests.doctoral.harness import Databases
from tests.fixtures.smtp import Inbox
from tranche.batch import BatchStatus, JobExecution
from tranche.doctoral.consistency.anomalies import anomalie_signalee
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.runtime import Runtime

__all__ = ["fresh"]

JOB = "dataConsistencyJob"
#: The runtime's metrics registry, by the test's databases.
REGISTRIES: dict[int, CollectorRegistry] = {}


@pytest.fixture
async def runtime(fresh: Databases, tmp_path: Path, smtp_server: Inbox) -> AsyncIterator[Runtime]:
    settings = fresh.settings(
        uploads_dir=tmp_path / "uploads",
        reports_dir=tmp_path / "reports",
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        technical_admin_email=TECH,
        consistency_chunk_size=2,  # several slices even for this small portal
    )
    rt = Runtime.build(settings, REGISTRIES.setdefault(id(fresh), CollectorRegistry()))
    try:
        yield rt
    finally:
        await rt.close()


def _dbs(rt: Runtime) -> dict[str, Any]:
    s = rt.sources
    return {
        "userdb": s.userdb,
        "inscription_db": s.inscription_db,
        "defensedb": s.defensedb,
        "notification_db": s.notification_db,
    }


async def _world(rt: Runtime) -> World:
    portal = Portal(rt.sources.userdb, rt.sources.inscription_db)
    return await plant(
        portal, rt.sources.defensedb, rt.sources.notification_db, rt.settings.uploads_path
    )


async def _run(rt: Runtime, at: Any = RUN, **extra: Any) -> JobExecution:
    spec = rt.spec(JOB)
    execution = await rt.launcher.run(spec.job, rt.parameters("pytest", at=at, extra=extra))
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    return execution


def _anomaly_counts(execution: JobExecution) -> dict[str, int]:
    return {k: v for k, v in counts_of(execution).items() if k.startswith("anomalies.")}


def _subject(message: Message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def _pdf_text(path: Path) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils, installed by scripts/bootstrap.sh) is missing")
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


async def test_each_inconsistency_is_fixed_or_reported_once(
    runtime: Runtime, smtp_server: Inbox, fresh: Databases
) -> None:
    w = await _world(runtime)
    uploads = runtime.settings.uploads_path
    before = await snapshot(_dbs(runtime))
    files_before = files_under(uploads)

    execution = await _run(runtime)

    assert _anomaly_counts(execution) == {
        "anomalies.utilisateurInexistant.corrected": 1,
        "anomalies.soutenanceSansInscription.manual": 1,
        "anomalies.roles.corrected": 2,
        "anomalies.roles.manual": 1,
        "anomalies.fichiersOrphelins.corrected": 2,
        "anomalies.notificationsEnAttente.corrected": 1,
    }
    diff = changes(before, await snapshot(_dbs(runtime)))
    assert set(diff) == {
        "inscription_db.inscriptions",
        "userdb.user_roles",
        "userdb.user_audits",
        "notification_db.notifications",
    }
    # 1. Blocked with the owner's own flag; statut untouched.
    gone, new = diff["inscription_db.inscriptions"]
    assert [r["id"] for r in new] == [w.missing_enrollment]
    assert new[0]["bloque_re_inscription"] is True and new[0]["statut"] == gone[0]["statut"]
    assert {k: v for k, v in new[0].items() if k != "bloque_re_inscription"} == {
        k: v for k, v in gone[0].items() if k != "bloque_re_inscription"
    }
    # 3. Roles, with user-service's audit rows.
    actif = await _role(runtime, "ROLE_DOCTORANT_ACTIF")
    gone, new = diff["userdb.user_roles"]
    assert gone == [{"user_id": w.doctor, "role_id": actif}]
    assert new == [{"user_id": w.without_actif, "role_id": actif}]
    gone, new = diff["userdb.user_audits"]
    assert not gone
    assert sorted((r["user_id"], r["action"]) for r in new) == sorted(
        [(w.without_actif, "ROLE_ASSIGNED"), (w.doctor, "ROLE_REMOVED")]
    )
    assert all("ROLE_DOCTORANT_ACTIF" in r["details"] for r in new)
    # 5. The old PENDING one was mailed and is SENT; the young one is untouched.
    gone, new = diff["notification_db.notifications"]
    assert [r["id"] for r in new] == [w.pending_old]
    assert new[0]["statut"] == "SENT" and new[0]["date_envoi"] is not None
    assert new[0]["nombre_tentatives"] == 1 and new[0]["erreur_message"] is None
    resent = [m for m in smtp_server.messages if _subject(m) == "Votre inscription est validée"]
    assert len(resent) == 1 and resent[0]["To"] == "doctorant.ok@etu.univ-exemple.fr"
    html = next(p for p in resent[0].walk() if p.get_content_type() == "text/html")
    assert "<b>validée</b>" in html.get_payload(decode=True).decode()
    # 4. Orphans moved (a taken name gets a suffix), the referenced and the young stay.
    assert files_under(uploads) == (
        files_before - {"cv_1600000000000_77_zzzzzzzz.pdf", "autre_1600000000000_78_yyyyyyyy.pdf"}
        | {
            "orphelins/cv_1600000000000_77_zzzzzzzz.pdf",
            "orphelins/autre_1600000000000_78_yyyyyyyy_1.pdf",
        }
    )
    assert w.files["referenced"].exists() and w.files["attestation"].exists()
    assert w.files["young"].exists()
    # 6. The report: file, mail with the PDF, event in the consumer's format.
    report = runtime.settings.reports_dir / "anomaly_report_2025_03_17_230000.pdf"
    assert sorted(p.name for p in runtime.settings.reports_dir.iterdir()) == [report.name]
    text = _pdf_text(report)
    for expected in (
        "Inscription dont le doctorant n'existe plus dans userdb",
        f"Inscription {w.missing_enrollment} (VALIDE) du doctorant {MISSING_DOCTORANT}",
        f"Demande de soutenance {w.orphan_request} (JURY_PROPOSED)",
        "ROLE_DOCTEUR absent",
        "Déplacé vers orphelins/autre_1600000000000_78_yyyyyyyy_1.pdf",
        "Renvoyée par mail",
    ):
        assert expected in " ".join(text.split()), expected
    mailed = [m for m in smtp_server.messages if m["To"] == TECH]
    assert len(mailed) == 1
    attachments = [p.get_filename() for p in mailed[0].walk() if p.get_filename()]
    assert attachments == [report.name]
    notices = [e for e in await events(runtime.sources.batchdb) if e["type"] == "ALERTE_SYSTEME"]
    by_event: dict[str, list[str]] = {}
    for e in notices:
        by_event.setdefault(e["donnees"]["evenement"], []).append(e["destinataire"])
    assert sorted(by_event["DATA_CONSISTENCY_ANOMALY"]) == sorted([ADMIN, ADMIN, DIRECTOR])
    assert by_event["ANOMALY_REPORT_GENERATED"] == [TECH]
    report_event = next(
        e for e in notices if e["donnees"]["evenement"] == "ANOMALY_REPORT_GENERATED"
    )
    assert report_event["donnees"]["fichier"] == report.name
    assert set(report_event) == {
        "type",
        "destinataire",
        "sujet",
        "messageTexte",
        "priorite",
        "donnees",
    }
    # Metrics per check and resolution.
    registry = REGISTRIES[id(fresh)]
    for check, resolution, n in (
        ("roles", "corrected", 2),
        ("roles", "manual", 1),
        ("soutenanceSansInscription", "manual", 1),
        ("fichiersOrphelins", "corrected", 2),
    ):
        labels = {"check": check, "resolution": resolution}
        assert registry.get_sample_value("batch_consistency_anomalies_total", labels) == n

    # A second run (an hour later: the young file and notification are still young)
    # finds nothing, changes nothing, reports nothing.
    mails, queued = len(smtp_server.messages), len(await events(runtime.sources.batchdb))
    settled = await snapshot(_dbs(runtime))
    files_now = files_under(uploads)
    again = await _run(runtime, at=RUN + timedelta(hours=1))
    assert _anomaly_counts(again) == {}
    assert changes(settled, await snapshot(_dbs(runtime))) == {}
    assert files_under(uploads) == files_now
    assert len(smtp_server.messages) == mails
    assert len(await events(runtime.sources.batchdb)) == queued
    assert [p.name for p in runtime.settings.reports_dir.iterdir()] == [report.name]
    report_step = again.step_executions[-1]
    assert report_step.step_name == "generateAnomalyReportStep"
    assert report_step.exit_status.exit_code == "NOOP"
    # The anomalies needing a person are still known (reported once), not forgotten.
    async with runtime.sources.batchdb.sessions() as s:
        known = set((await s.execute(sa.select(anomalie_signalee.c.record_key))).scalars())
    assert known == {f"defense_request:{w.orphan_request}", f"docteur:{w.doctor}"}


async def test_dry_run_changes_nothing_then_the_real_run_still_finds_everything(
    runtime: Runtime, smtp_server: Inbox
) -> None:
    await _world(runtime)
    uploads = runtime.settings.uploads_path
    before = await snapshot(_dbs(runtime))
    files_before = files_under(uploads)

    dry = await _run(runtime, dryRun=True)

    found = _anomaly_counts(dry)
    assert sum(found.values()) == 8
    assert changes(before, await snapshot(_dbs(runtime))) == {}
    assert files_under(uploads) == files_before
    assert smtp_server.messages == []
    assert await events(runtime.sources.batchdb) == []
    assert not runtime.settings.reports_dir.exists() or not list(
        runtime.settings.reports_dir.iterdir()
    )
    async with runtime.sources.batchdb.sessions() as s:
        assert (
            await s.execute(sa.select(sa.func.count()).select_from(anomalie_signalee))
        ).scalar() == 0

    real = await _run(runtime, at=RUN + timedelta(minutes=5))
    assert sum(_anomaly_counts(real).values()) == 8
    assert changes(before, await snapshot(_dbs(runtime)))


async def _role(rt: Runtime, name: str) -> int:
    from tests.doctoral.consistency_world import role_id

    return await role_id(rt.sources.userdb, name)
