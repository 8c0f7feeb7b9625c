"""``tranche bench doctoral --consistency``: dataConsistencyJob at volume on MariaDB.

Scratch databases as for the other doctoral benchmarks, filled (not timed) with
``--enrollments`` validated enrollments whose doctorants mostly exist and hold
their roles, ``--files`` uploads of which 90 % are referenced by a
``documents_inscription`` row, and a share of each fault: 1 % of enrollments
of deleted doctorants, 2 % of doctorants without ROLE_DOCTORANT_ACTIF, defense
requests for 10 % (a tenth of them for doctorants never validated, a fifth
COMPLETED), 10 % orphan files and 200 stuck notifications, re-sent to an
in-process SMTP receiver (aiosmtpd, a development dependency). Then the job
runs twice: the first finds and fixes everything (and writes the PDF), the
second finds nothing — its time is the nightly cost of a clean portal.
Peak RSS is this process's resident set during each run.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.batch import BatchSettings
from tranche.bench import _doctoral_data as data
from tranche.bench._report import machine_line
from tranche.bench.doctoral import Measure, _timed
from tranche.core.broker import free_port
from tranche.core.db import Database
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import inscription_db as I
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

__all__ = ["markdown", "run"]

_FIELDS = {
    "batch_db_url": "batchdb",
    "user_db_url": "userdb",
    "inscription_db_url": "inscription_db",
    "defense_db_url": "defensedb",
    "notification_db_url": "notification_db",
}


async def _insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 2000):
        async with db.transaction() as s:
            await s.execute(sa.insert(table), rows[start : start + 2000])


async def _fill(
    dbs: dict[str, Database], enrollments: int, files: int, uploads: Path, now: datetime
) -> None:
    userdb, ins = dbs["userdb"], dbs["inscription_db"]
    doctorant = await data.role_id(userdb, "ROLE_DOCTORANT")
    actif = await data.role_id(userdb, "ROLE_DOCTORANT_ACTIF")
    director = 1
    await data.users(userdb, director, 1, await data.role_id(userdb, "ROLE_DIRECTEUR"))
    first = 2
    ids = range(first, first + enrollments)
    gone = {d for d in ids if d % 100 == 0}  # 1 %: deleted from userdb
    never_validated = range(first + enrollments, first + enrollments + max(1, enrollments // 100))
    await data.users(userdb, first, enrollments + len(never_validated), doctorant)
    async with userdb.transaction() as s:
        await s.execute(sa.delete(U.user_roles).where(U.user_roles.c.user_id.in_(sorted(gone))))
        await s.execute(sa.delete(U.users).where(U.users.c.id.in_(sorted(gone))))
    await _insert(
        userdb,
        U.user_roles,
        [{"user_id": d, "role_id": actif} for d in ids if d not in gone and d % 50 != 1],
    )
    await data.enrollments(ins, ids, director, now.replace(tzinfo=None))
    requests: list[dict[str, Any]] = []
    defenses: list[dict[str, Any]] = []
    for n, d in enumerate([*list(ids)[::10], *never_validated]):
        done = n % 5 == 0 and d < first + enrollments
        requests.append(
            {"id": n + 1, "doctorant_id": d, "status": "COMPLETED" if done else "SUBMITTED"}
        )
        if done:
            defenses.append(
                {
                    "status": "COMPLETED",
                    "publication_recommended": False,
                    "defense_request_id": n + 1,
                }
            )
    await _insert(dbs["defensedb"], D.defense_requests, requests)
    await _insert(dbs["defensedb"], D.defenses, defenses)
    old = (now - timedelta(days=3)).timestamp()
    names = [
        f"cv_{1_700_000_000_000 + n}_{first + n % enrollments}_bench{n:04d}.pdf"
        for n in range(files)
    ]
    await asyncio.to_thread(_write_files, uploads, names, old)
    documents = [
        {
            "inscription_id": 1 + n % enrollments,
            "type_document": "CV",
            "nom_fichier": "cv.pdf",
            "chemin_fichier": f"./uploads/{name}",
            "date_upload": now.replace(tzinfo=None),
        }
        for n, name in enumerate(names)
        if n % 10  # every tenth file is an orphan
    ]
    await _insert(ins, I.documents_inscription, documents)
    created = now.replace(tzinfo=None) - timedelta(days=2)
    await _insert(
        dbs["notification_db"],
        N.notifications,
        [
            {
                "type": "NOTIFICATION_GENERALE",
                "destinataire": f"doctorant{n}@etu.univ-exemple.fr",
                "sujet": "Rappel",
                "message_texte": "Bonjour",
                "statut": "PENDING",
                "priorite": "NORMALE",
                "nombre_tentatives": 0,
                "date_creation": created,
            }
            for n in range(200)
        ],
    )


def _write_files(uploads: Path, names: list[str], mtime: float) -> None:
    uploads.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = uploads / name
        path.write_bytes(b"%PDF-1.4\n")
        os.utime(path, (mtime, mtime))


async def run(
    enrollments: int, files: int, server: str, keep: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    from aiosmtpd.controller import Controller  # a development dependency, like the bench

    class Sink:
        received = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            Sink.received += 1
            return "250 OK"

    at = datetime.now(UTC).replace(microsecond=0)
    measures: list[Measure] = []
    steps: dict[str, float] = {}
    counts: dict[str, int] = {}
    smtp = Controller(Sink(), hostname="127.0.0.1", port=free_port())
    smtp.start()
    with tempfile.TemporaryDirectory() as tmp:
        uploads, reports = Path(tmp) / "uploads", Path(tmp) / "reports"
        async with data.scratch_databases(server, keep) as urls:
            dbs = await data.prepare(urls)
            try:
                say(f"generating {enrollments} enrollments and {files} uploads")
                await _fill(dbs, enrollments, files, uploads, at)
            finally:
                for db in dbs.values():
                    await db.close()
            values: dict[str, Any] = {f: urls[n] for f, n in _FIELDS.items()}
            settings = DoctoralSettings(
                **values,
                jwt_secret="bench-secret-bench-secret-bench-secret!",
                batch=BatchSettings(scheduler_enabled=False),
                db_pool_size=4,
                uploads_dir=uploads,
                reports_dir=reports,
                smtp_host="127.0.0.1",
                smtp_port=smtp.port,
                technical_admin_email="tech@univ-exemple.fr",
            )
            runtime = Runtime.build(settings)
            try:
                for label, when in (
                    ("first run (fixes)", at),
                    ("second run (clean)", at + timedelta(minutes=1)),
                ):
                    say(f"running dataConsistencyJob, {label}")

                    async def job(when: datetime = when, label: str = label) -> int:
                        spec = runtime.spec("dataConsistencyJob")
                        execution = await runtime.launcher.run(
                            spec.job, runtime.parameters("bench", at=when)
                        )
                        if execution.status.value != "COMPLETED":
                            raise RuntimeError(f"dataConsistencyJob: {execution.exit_status}")
                        for s in execution.step_executions:
                            if s.start_time and s.end_time and label.startswith("first"):
                                steps[s.step_name] = (s.end_time - s.start_time).total_seconds()
                        if label.startswith("first"):
                            counts.update(
                                {k: int(v) for k, v in execution.context.get("counts", {}).items()}
                            )
                        return sum(s.read_count for s in execution.step_executions)

                    measures.append(await _timed(f"dataConsistencyJob, {label}", job))
            finally:
                await runtime.close()
    smtp.stop()
    return {
        "benchmark": "doctoral-consistency",
        "database": await data.server_version(server),
        "enrollments": enrollments,
        "files": files,
        "runs": [m.as_dict() for m in measures],
        "steps": steps,
        "counts": counts,
        "mails": Sink.received,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "## Data consistency job (`tranche bench doctoral --consistency`)",
        "",
        machine_line() + f" · {results['database']}",
        "",
        f"{results['enrollments']} validated enrollments, {results['files']} uploads; "
        "1 % enrollments of deleted users, 2 % missing roles, 10 % of doctorants with a defense "
        "request, 10 % orphan files, 200 stuck notifications; chunks of 500.",
        "",
        "| run | rows + files read | seconds | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for m in results["runs"]:
        lines.append(
            f"| {m['name']} | {m['items']} | {m['seconds']:.2f} | {m['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "First run, per step: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in results["steps"].items())
        + ".",
    ]
    found = {
        k.removeprefix("anomalies."): v
        for k, v in results["counts"].items()
        if k.startswith("anomalies.")
    }
    lines += [
        "",
        "Found and handled by the first run: "
        + ", ".join(f"{k} {v}" for k, v in sorted(found.items()))
        + f"; {results['mails']} mails (re-sent notifications and the report).",
    ]
    return "\n".join(lines)
