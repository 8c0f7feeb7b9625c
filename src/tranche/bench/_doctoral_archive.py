"""``tranche bench doctoral --archives N``: archiveJob on N enrollments with files, on MariaDB.

Scratch databases on the MariaDB server and a scratch directory hold N
validated enrollments closed 13+ months before the run, each with two
uploaded documents (20 KB and 60 KB of random bytes: incompressible, the worst
case for time). archiveJob then archives them all — record JSON, two files,
AES-256 ZIP, verification, rename, rows, removal of the originals — first on
N/4 records, then on N more, so the two peak RSS figures show whether memory
grows with the number of records (it should not: one record at a time,
files streamed in 1 MiB blocks).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tranche.batch import BatchSettings
from tranche.bench import _doctoral_data as data
from tranche.bench._report import machine_line
from tranche.core.db import Database
from tranche.doctoral.archive.keys import new_key
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.settings import DoctoralSettings
from tranche.doctoral.tables import inscription_db as I

__all__ = ["markdown", "run_archives"]

_SIZES = (20_000, 60_000)
_FIELDS = {
    "batch_db_url": "batchdb",
    "user_db_url": "userdb",
    "inscription_db_url": "inscription_db",
    "defense_db_url": "defensedb",
    "notification_db_url": "notification_db",
}


async def _records(
    db: Database, uploads: Path, first_doctorant: int, count: int, at: datetime
) -> None:
    """``count`` closed enrollments (ids continue) with two files each."""
    async with db.sessions() as s:
        has_campaign = (
            await s.execute(sa.select(sa.func.count()).select_from(I.campagnes))
        ).scalar()
    if not has_campaign:
        await data.enrollments(db, range(first_doctorant, first_doctorant + count), 1, at)
    else:
        async with db.transaction() as s:
            await s.execute(
                sa.insert(I.inscriptions),
                [
                    {
                        "doctorant_id": d,
                        "directeur_these_id": 1,
                        "campagne_id": 1,
                        "sujet_these": "Sujet",
                        "type": "PREMIERE_INSCRIPTION",
                        "annee_inscription": at.year,
                        "statut": "VALIDE",
                        "date_creation": at,
                        "date_validation": at,
                        "date_premiere_inscription": at,
                        "bloque_re_inscription": False,
                    }
                    for d in range(first_doctorant, first_doctorant + count)
                ],
            )
    async with db.sessions() as s:
        ids = list(
            (
                await s.execute(
                    sa.select(I.inscriptions.c.id).where(
                        I.inscriptions.c.doctorant_id >= first_doctorant
                    )
                )
            ).scalars()
        )
    rows = []
    for iid in ids:
        for n, size in enumerate(_SIZES):
            name = f"cv_{iid}_{n}.pdf"
            (uploads / name).write_bytes(os.urandom(size))
            rows.append(
                {
                    "inscription_id": iid,
                    "type_document": "CV",
                    "nom_fichier": name,
                    "chemin_fichier": name,
                    "taille_fichier": size,
                    "date_upload": at,
                }
            )
    async with db.transaction() as s:
        await s.execute(sa.insert(I.documents_inscription), rows)


async def run_archives(
    archives: int,
    server: str,
    keep: bool,
    say: Callable[[str], None],
    timed: Callable[[str, Callable[[], Awaitable[int]]], Awaitable[Any]],
) -> dict[str, Any]:
    run_at = datetime.now(UTC).replace(microsecond=0)
    closed = (run_at - timedelta(days=400)).replace(tzinfo=None)
    small = max(1, archives // 4)
    measures = []
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix="tranche-bench-archive-") as tmp:
        root = Path(tmp)
        (root / "uploads").mkdir()
        async with data.scratch_databases(server, keep) as urls:
            dbs = await data.prepare(urls)
            for db in dbs.values():
                await db.close()
            values: dict[str, Any] = {f: urls[n] for f, n in _FIELDS.items()}
            settings = DoctoralSettings(
                **values,
                jwt_secret="bench-secret-bench-secret-bench-secret!",
                batch=BatchSettings(scheduler_enabled=False),
                db_pool_size=4,
                archive_keys={"bench": new_key()},
                archives_dir=root / "archives",
                uploads_dir=root / "uploads",
                pv_storage_dir=root / "pv",
            )
            runtime = Runtime.build(settings)
            try:
                first = 10
                for n, (count, at) in enumerate(
                    ((small, run_at), (archives, run_at + timedelta(minutes=1)))
                ):
                    say(f"generating {count} closed enrollments with {len(_SIZES)} files each")
                    await _records(
                        runtime.sources.inscription_db, root / "uploads", first, count, closed
                    )
                    first += count

                    async def job(at: datetime = at) -> int:
                        spec = runtime.spec("archiveJob")
                        execution = await runtime.launcher.run(
                            spec.job, runtime.parameters("bench", at=at)
                        )
                        if execution.status.value != "COMPLETED":
                            raise RuntimeError(f"archiveJob: {execution.exit_status}")
                        return int(execution.step_executions[0].write_count)

                    say(f"running archiveJob on {count} records")
                    measures.append(await timed(f"archiveJob, {count} records", job))
                    if n == 1:
                        sizes = [p.stat().st_size for p in (root / "archives").rglob("*.zip")]
            finally:
                await runtime.close()
    version = await data.server_version(server)
    return {
        "benchmark": "doctoral-archive",
        "database": version,
        "archives": archives,
        "files_per_record": len(_SIZES),
        "bytes_per_record": sum(_SIZES),
        "archive_bytes_total": sum(sizes),
        "runs": [m.as_dict() for m in measures],
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "## archiveJob (`tranche bench doctoral --archives N`)",
        "",
        machine_line() + f" · {results['database']}",
        "",
        f"Closed enrollments with {results['files_per_record']} uploaded files each "
        f"({results['bytes_per_record'] // 1000} KB of random bytes per record), archived into "
        "one AES-256 ZIP each (written, fsynced, verified, renamed; rows committed; originals "
        "removed). Scratch databases on the local MariaDB server, files on local disk.",
        "",
        "| run | records | seconds | records/s | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in results["runs"]:
        lines.append(
            f"| {m['name']} | {m['items']} | {m['seconds']:.2f} | {m['items_per_s']:.0f} "
            f"| {m['peak_rss_mb']:.0f} |"
        )
    small, large = results["runs"]
    lines += [
        "",
        f"Peak RSS {small['peak_rss_mb']:.0f} MB for {small['items']} records and "
        f"{large['peak_rss_mb']:.0f} MB for {large['items']}: memory does not grow with the "
        "number of records (one record in memory at a time, files streamed in 1 MiB blocks). "
        f"The {large['items']} archives take {results['archive_bytes_total'] / 2**20:.1f} MiB. "
        "Each record costs two reads of its files (archiving, verification) and one of the "
        "archive (its SHA-256 before the originals are removed).",
    ]
    return "\n".join(lines)
