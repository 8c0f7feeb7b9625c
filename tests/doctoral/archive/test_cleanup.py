"""Log cleanup keeps every error for ever (properties), and the job's last two steps on both engines."""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.doctoral.archive.data import OLD, RUN, scene
from tests.doctoral.factories import POOL
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.core.db import Database
from tranche.doctoral.archive.cleanup import (
    delete_sent_notifications,
    is_error_log,
    old_log_files,
)
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.tables import create_foreign_schema
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

NOW = datetime(2026, 6, 1, 3, 0)
CUTOFF = datetime(2026, 3, 1, 3, 0)  # three months before NOW
PATTERNS = ("*error*", "*.err")

rows = st.lists(
    st.tuples(
        st.sampled_from(N.STATUTS),
        st.one_of(st.none(), st.integers(min_value=-400 * 24, max_value=10 * 24)),
    ),
    max_size=40,
)


def _notification(statut: str, hours: int | None) -> dict[str, object]:
    sent = None if hours is None else NOW + timedelta(hours=hours)
    return {
        "type": "RAPPEL_ECHEANCE",
        "destinataire": "a@b.fr",
        "statut": statut,
        "priorite": "NORMALE",
        "date_creation": sent or NOW,
        "date_envoi": sent,
    }


async def _cleanup(data: list[tuple[str, int | None]], dlq: int, directory: str) -> None:
    db = Database.open("notification_db", f"sqlite+aiosqlite:///{directory}/n.db", POOL)
    try:
        await create_foreign_schema(db.engine, "notification_db")
        async with db.transaction() as s:
            if data:
                await s.execute(sa.insert(N.notifications), [_notification(*r) for r in data])
            for n in range(dlq):
                await s.execute(
                    sa.insert(N.notification_dlq).values(
                        notification_id=n, type="X", destinataire="a@b.fr", date_ajout_dlq=OLD
                    )
                )
        while True:
            async with db.transaction() as s:
                if await delete_sent_notifications(s, CUTOFF) == 0:
                    break
        async with db.sessions() as s:
            kept = (await s.execute(sa.select(N.notifications))).mappings().all()
            dlq_left = (
                await s.execute(sa.select(sa.func.count()).select_from(N.notification_dlq))
            ).scalar_one()
    finally:
        await db.close()
    expected = [r for r in data if not (r[0] == "SENT" and r[1] is not None and _at(r[1]) < CUTOFF)]

    def key(statut: str, sent: datetime | None) -> tuple[str, datetime]:
        return statut, sent or datetime.min

    assert sorted(key(k["statut"], k["date_envoi"]) for k in kept) == sorted(
        key(s, None if h is None else _at(h)) for s, h in expected
    )
    # Errors for ever: every FAILED notification and every dead letter survives.
    assert sum(1 for k in kept if k["statut"] == "FAILED") == sum(
        1 for r in data if r[0] == "FAILED"
    )
    assert dlq_left == dlq


def _at(hours: int) -> datetime:
    return NOW + timedelta(hours=hours)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows, st.integers(min_value=0, max_value=3))
def test_only_sent_notifications_older_than_three_months_are_deleted(
    data: list[tuple[str, int | None]], dlq: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_cleanup(data, dlq, directory))


names = st.tuples(
    st.sampled_from(["app", "batch", "ERROR", "app-error", "service", "worker.err", "x.log.1"]),
    st.sampled_from(["", ".log", ".err", ".gz"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(names, st.integers(min_value=0, max_value=400)), max_size=12))
def test_old_log_files_go_and_error_logs_stay(files: list[tuple[tuple[str, str], int]]) -> None:
    before = datetime(2026, 1, 1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        expected = set()
        for n, ((stem, suffix), age_days) in enumerate(files):
            path = root / f"d{n % 3}" / f"{stem}-{n}{suffix}"
            path.parent.mkdir(exist_ok=True)
            path.write_text("line\n")
            when = (before - timedelta(days=age_days - 200)).timestamp()
            os.utime(path, (when, when))
            old = datetime.fromtimestamp(when) < before
            if old and not is_error_log(path.name, PATTERNS):
                expected.add(path)
        assert set(old_log_files(root, before, PATTERNS)) == expected
        assert all("error" not in p.name.lower() and p.suffix != ".err" for p in expected)


async def test_cleanup_and_maintenance_steps_on_the_job(fresh: Databases, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old_time = (RUN - timedelta(days=220)).timestamp()
    for name in ("app.log", "app-error.log", "batch.err", "recent.log"):
        (logs / name).write_text("x" * 100)
        if name != "recent.log":
            os.utime(logs / name, (old_time, old_time))
    async with scene(fresh, tmp_path, application_log_dir=logs) as world:
        src = world.runtime.sources
        uid = await world.portal.user()
        async with src.notification_db.transaction() as s:
            await s.execute(
                sa.insert(N.notifications),
                [
                    _notification("SENT", -24 * 100),
                    _notification("SENT", -24 * 10),
                    _notification("FAILED", -24 * 300),
                    _notification("PENDING", None),
                ],
            )
        async with src.userdb.transaction() as s:
            for days in (400, 30):
                await s.execute(
                    sa.insert(U.user_audits).values(
                        user_id=uid,
                        action="LOGIN",
                        timestamp=RUN.replace(tzinfo=None) - timedelta(days=days),
                    )
                )
        world.pv.mkdir(parents=True, exist_ok=True)
        await world.enrollment("VALIDE", validated=OLD)
        execution = await world.run()
        assert execution.status is BatchStatus.COMPLETED, execution.exit_status
        counts = counts_of(execution)
        assert counts["notificationsDeleted"] == 1
        assert counts["userAuditsDeleted"] == 1
        assert counts["logFilesDeleted"] == 1
        assert sorted(p.name for p in logs.iterdir()) == [
            "app-error.log",
            "batch.err",
            "recent.log",
        ]
        async with src.notification_db.sessions() as s:
            statuts = sorted((await s.execute(sa.select(N.notifications.c.statut))).scalars())
        assert statuts == ["FAILED", "PENDING", "SENT"]

        (maintenance,) = [
            s for s in execution.step_executions if s.step_name == "optimizeDatabaseStep"
        ]
        results = maintenance.context["maintenance"]
        tables = {(r["database"], r["table"]) for r in results}
        assert tables == {
            ("batchdb", "inscription_archive"),
            ("batchdb", "archive_audit_trail"),
            ("notification_db", "notifications"),
            ("userdb", "user_audits"),
        }
        operations = {r["operation"] for r in results}
        if fresh.kind == "mariadb":
            assert operations == {"OPTIMIZE", "ANALYZE"}
            assert all(r["status"] in ("status", "note") for r in results), results
        else:
            assert operations == {"ANALYZE"}
