"""``tranche bench doctoral --report-month``: monthlyReportJob over a busy month on MariaDB.

Scratch databases on a MariaDB server hold a month (2025-02) with ``N``
enrollments created in it (each with its ``infos_these``, 20 disciplines and 40
laboratories; half validated, a tenth rejected with their validation row), as
many notifications and new accounts, and the same again in the month before
(the report compares the two). ``N`` doctorants' first enrollments are spread
over 0-80 months, so every duration band is populated. The whole job is timed —
ten statistics queries per category (this month and the previous), the PDF,
the event and the mail step (no SMTP host: recipients recorded SKIPPED) — with
the PDF's own drawing time and size, and the process's peak RSS.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tranche.batch import BatchSettings, JobParameters
from tranche.bench import _doctoral_data as data
from tranche.bench._report import machine_line
from tranche.bench.doctoral import _timed
from tranche.core.db import Database
from tranche.doctoral.jobs import monthly_report as MR
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

__all__ = ["markdown", "run"]

MONTH = "2025-02"
_STARTS = (datetime(2025, 2, 1), datetime(2025, 1, 1))
_STATUTS = ("VALIDE", "VALIDE", "VALIDE", "VALIDE", "VALIDE", "EN_ATTENTE_ADMIN",
            "EN_ATTENTE_DIRECTEUR", "BROUILLON", "REJETE", "EN_ATTENTE_ADMIN")  # fmt: skip
_NOTE_STATUTS = ("SENT",) * 8 + ("FAILED", "PENDING")


async def _month_rows(dbs: dict[str, Database], n: int) -> None:
    ins_db = dbs["inscription_db"]
    await data._insert(
        ins_db,
        I.campagnes,
        [
            {"id": 1, "libelle": "Bench", "type": "INSCRIPTION", "date_debut": _STARTS[1].date(),
             "date_fin": _STARTS[0].date(), "active": True, "annee_universitaire": 2024}
        ],
    )  # fmt: skip
    enrollments, infos, validations, notes, people = [], [], [], [], []
    eid = 0
    for start in _STARTS:
        for k in range(n):
            eid += 1
            created = start + timedelta(minutes=(k * 37) % (27 * 24 * 60))
            statut = _STATUTS[k % len(_STATUTS)]
            validated = created + timedelta(days=1 + k % 40) if statut == "VALIDE" else None
            first = created - timedelta(days=(k * 29) % (80 * 30))
            enrollments.append(
                {"id": eid, "doctorant_id": eid, "directeur_these_id": 1, "campagne_id": 1,
                 "sujet_these": "Sujet", "type": "REINSCRIPTION" if k % 3 else
                 "PREMIERE_INSCRIPTION", "annee_inscription": created.year, "statut": statut,
                 "date_creation": created, "date_validation": validated,
                 "date_premiere_inscription": first if statut == "VALIDE" else None,
                 "derogation": None, "bloque_re_inscription": False}
            )  # fmt: skip
            infos.append(
                {"inscription_id": eid, "titre_these": "Thèse", "discipline": f"D{k % 20}",
                 "laboratoire": f"L{k % 40}", "etablissement_accueil": "U", "cotutelle": False,
                 "date_debut_prevue": created.date()}
            )  # fmt: skip
            if statut == "REJETE":
                validations.append(
                    {"inscription_id": eid, "validateur_id": 0, "type_validateur":
                     "ADMINISTRATION", "statut": "REJETE", "date_validation": created
                     + timedelta(days=2), "date_creation": created}
                )  # fmt: skip
            notes.append(
                {"type": "RAPPEL_ECHEANCE", "destinataire": "x@univ-exemple.fr", "sujet": "s",
                 "statut": _NOTE_STATUTS[k % len(_NOTE_STATUTS)], "priorite": "NORMALE",
                 "date_creation": created}
            )  # fmt: skip
            people.append(
                {"id": 10 + eid, "last_name": "N", "first_name": "P", "email":
                 f"u{eid}@bench.univ-exemple.fr", "password": "x", "phone_number": "0",
                 "adresse": "a", "ville": "v", "pays": "p", "enabled": True,
                 "created_at": created, "account_status": "ACTIVE",
                 "failed_login_attempts": 0, "profile_complete": True}
            )  # fmt: skip
    await data._insert(ins_db, I.inscriptions, enrollments)
    await data._insert(ins_db, I.infos_these, infos)
    await data._insert(ins_db, I.validations_inscription, validations)
    await data._insert(dbs["notification_db"], N.notifications, notes)
    userdb = dbs["userdb"]
    admin = await data.role_id(userdb, "ROLE_ADMIN")
    await data.users(userdb, 1, 2, admin)  # two admins: the report's recipients
    await data._insert(userdb, U.users, people)


async def run(
    enrollments: int, server: str, keep: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    async with data.scratch_databases(server, keep) as urls:
        dbs = await data.prepare(urls)
        try:
            say(f"generating {enrollments} enrollments in {MONTH} and as many the month before")
            await _month_rows(dbs, enrollments)
        finally:
            for db in dbs.values():
                await db.close()
        fields = {"batch_db_url": "batchdb", "user_db_url": "userdb",
                  "inscription_db_url": "inscription_db", "defense_db_url": "defensedb",
                  "notification_db_url": "notification_db"}  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="bench-reports-") as reports:
            values: dict[str, Any] = {f: urls[n] for f, n in fields.items()}
            settings = DoctoralSettings(
                **values,
                jwt_secret="bench-secret-bench-secret-bench-secret!",
                batch=BatchSettings(scheduler_enabled=False),
                reports_dir=Path(reports),
                db_pool_size=4,
            )
            runtime = Runtime.build(settings)
            report: dict[str, Any] = {}
            try:
                say("running monthlyReportJob")

                async def job() -> int:
                    spec = runtime.spec(MR.JOB_NAME)
                    params = JobParameters({**runtime.parameters("bench"), MR.MONTH: MONTH})
                    execution = await runtime.launcher.run(spec.job, params)
                    if execution.status.value != "COMPLETED":
                        raise RuntimeError(f"monthlyReportJob: {execution.exit_status}")
                    report.update(execution.context[MR.REPORT_KEY])
                    created = execution.context["stats.enrollments"]["current"]["created"]
                    return int(created)

                measure = await _timed("monthlyReportJob", job)
            finally:
                await runtime.close()
    return {
        "benchmark": "doctoral-report",
        "database": await data.server_version(server),
        "enrollments": enrollments,
        "job": measure.as_dict(),
        "pdf_seconds": report["generationSeconds"],
        "pdf_bytes": report["sizeBytes"],
    }


def markdown(results: dict[str, Any]) -> str:
    job = results["job"]
    return "\n".join(
        [
            "## Monthly report (`tranche bench doctoral --report-month`)",
            "",
            machine_line() + f" · {results['database']}",
            "",
            f"monthlyReportJob for {MONTH}: {results['enrollments']} enrollments created in the "
            "month (and as many in the previous one, which the report compares with), as many "
            "notifications and new accounts; scratch databases on the local server.",
            "",
            "| run | enrollments in the month | job seconds | PDF seconds | PDF KB "
            "| peak RSS (MB) |",
            "|---|---:|---:|---:|---:|---:|",
            f"| monthlyReportJob | {job['items']} | {job['seconds']:.2f} "
            f"| {results['pdf_seconds']:.2f} | {results['pdf_bytes'] / 1024:.0f} "
            f"| {job['peak_rss_mb']:.0f} |",
            "",
            "Job seconds cover the ten statistics queries (each category for the month and the "
            "previous one), the PDF, the event and the mail step (no SMTP host: SKIPPED); PDF "
            "seconds are drawing the two charts and laying out the pages (reportlab, matplotlib "
            "Agg) plus the atomic write. The PDF's size does not grow with the month's volume: "
            "it holds aggregates only.",
        ]
    )
