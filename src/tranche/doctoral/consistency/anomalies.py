"""What every check shares: the anomalies it found, the dry-run switch, the ledger, the notices.

Anomalies live in the job's execution context (they commit with each slice, so
a restart keeps what was found before the crash) as counts per check and
resolution, plus the first :data:`MAX_LISTED` records per check for the report.

A corrected anomaly disappears from the data, so the next run does not see it.
One that needs a person stays; the ledger (``anomalie_signalee``, batchdb)
makes it reported once, and forgets it once it is gone from the data, so it
would be reported again if it came back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tranche.batch.context import ExecutionContext
from tranche.batch.uow import StepContext
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.doctoral.jobs.common import COUNTS_KEY, add_counts, run_at
from tranche.doctoral.models import utc_naive
from tranche.doctoral.notifications import NotificationError, Priorite, notification

__all__ = [
    "ANOMALIES_KEY",
    "DRY_RUN",
    "DRY_RUN_KEY",
    "MAX_LISTED",
    "Anomaly",
    "Check",
    "anomalie_signalee",
    "anomalies_found",
    "forget_resolved",
    "is_dry_run",
    "listed",
    "record",
    "send_notices",
    "unreported",
]

#: Job parameter: ``dryRun=true`` finds and reports, changes nothing.
DRY_RUN = "dryRun"
#: Job-context keys: the dry-run flag (read by the report step's condition) and the records.
DRY_RUN_KEY = "dryRun"
ANOMALIES_KEY = "anomalies"
#: Records kept per check for the report and the notices (the counts stay exact).
MAX_LISTED = 500


class Check(StrEnum):
    """The checks, by the name their counts and metrics carry."""

    MISSING_USER = "utilisateurInexistant"
    DEFENSE_WITHOUT_ENROLLMENT = "soutenanceSansInscription"
    ROLES = "roles"
    ORPHAN_FILES = "fichiersOrphelins"
    PENDING_NOTIFICATIONS = "notificationsEnAttente"


#: Titles in the report and the notices.
TITLES = {
    Check.MISSING_USER: "Inscription dont le doctorant n'existe plus dans userdb",
    Check.DEFENSE_WITHOUT_ENROLLMENT: "Demande de soutenance sans inscription validée",
    Check.ROLES: "Rôles des doctorants",
    Check.ORPHAN_FILES: "Fichiers orphelins du répertoire de dépôt",
    Check.PENDING_NOTIFICATIONS: "Notifications en attente depuis plus de 24 h",
}

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_metadata = sa.MetaData()

#: batchdb, migration 0006_consistency.
anomalie_signalee = sa.Table(
    "anomalie_signalee",
    _metadata,
    sa.Column("id", Pk, primary_key=True, autoincrement=True),
    sa.Column("check_name", sa.String(50), nullable=False),
    sa.Column("record_key", sa.String(255), nullable=False),
    sa.Column("first_seen", Ts, nullable=False),
    sa.Column("last_seen", Ts, nullable=False),
    sa.Column("job_execution_id", sa.BigInteger),
    sa.UniqueConstraint("check_name", "record_key", name="uk_anomalie_check_record"),
)


@dataclass(frozen=True)
class Anomaly:
    """One inconsistent record: what it is, what was done (or must be), whether it is fixed."""

    check: Check
    key: str
    record: str
    action: str
    corrected: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "check": self.check.value,
            "key": self.key,
            "record": self.record,
            "action": self.action,
            "corrected": self.corrected,
        }


def is_dry_run(ctx: StepContext) -> bool:
    value = ctx.parameters.value(DRY_RUN)
    dry = value is True or (isinstance(value, str) and value.strip().lower() == "true")
    ctx.job_context[DRY_RUN_KEY] = dry
    return dry


def record(ctx: StepContext, anomalies: Iterable[Anomaly]) -> None:
    """Count ``anomalies`` and keep the first :data:`MAX_LISTED` of each check."""
    found = list(anomalies)
    if not found:
        return
    listed_ = dict(ctx.job_context.get(ANOMALIES_KEY, {}))
    counts: dict[str, int] = {}
    for a in found:
        kind = "corrected" if a.corrected else "manual"
        key = f"anomalies.{a.check.value}.{kind}"
        counts[key] = counts.get(key, 0) + 1
        rows = list(listed_.get(a.check.value, []))
        if len(rows) < MAX_LISTED:
            listed_[a.check.value] = [*rows, a.as_json()]
    ctx.job_context[ANOMALIES_KEY] = listed_
    add_counts(ctx, counts)


def listed(context: ExecutionContext, check: Check) -> list[dict[str, Any]]:
    return list(dict(context.get(ANOMALIES_KEY, {})).get(check.value, []))


def totals(context: ExecutionContext) -> dict[Check, tuple[int, int]]:
    """Per check: (auto-corrected, needing a person)."""
    counts = dict(context.get(COUNTS_KEY, {}))
    out: dict[Check, tuple[int, int]] = {}
    for check in Check:
        fixed = int(counts.get(f"anomalies.{check.value}.corrected", 0))
        manual = int(counts.get(f"anomalies.{check.value}.manual", 0))
        if fixed or manual:
            out[check] = (fixed, manual)
    return out


def anomalies_found(context: ExecutionContext) -> bool:
    """The report step's condition: something was found, and this is not a dry run."""
    return bool(totals(context)) and not context.get(DRY_RUN_KEY, False)


async def unreported(ctx: StepContext, check: Check, anomalies: Sequence[Anomaly]) -> list[Anomaly]:
    """Those of ``anomalies`` (needing a person) not reported by an earlier run; ledger updated.

    In a dry run the ledger is only read, so the real run still reports them.
    """
    if not anomalies:
        return []
    A = anomalie_signalee
    session = await ctx.session()
    keys = [a.key for a in anomalies]
    known = set(
        (
            await session.execute(
                sa.select(A.c.record_key).where(
                    A.c.check_name == check.value, A.c.record_key.in_(keys)
                )
            )
        ).scalars()
    )
    new = [a for a in anomalies if a.key not in known]
    if is_dry_run(ctx):
        return new
    seen = utc_naive(run_at(ctx))
    if known:
        await session.execute(
            sa.update(A)
            .where(A.c.check_name == check.value, A.c.record_key.in_(sorted(known)))
            .values(last_seen=seen)
        )
    if new:
        await session.execute(
            sa.insert(A),
            [
                {
                    "check_name": check.value,
                    "record_key": a.key,
                    "first_seen": seen,
                    "last_seen": seen,
                    "job_execution_id": ctx.job_execution.id,
                }
                for a in new
            ],
        )
    add_counts(ctx, {f"known.{check.value}": len(known)})
    return new


async def forget_resolved(ctx: StepContext, check: Check) -> None:
    """Drop ledger rows of ``check`` this run did not see again (fixed since)."""
    if is_dry_run(ctx):
        return
    A = anomalie_signalee
    session = await ctx.session()
    await session.execute(
        sa.delete(A).where(A.c.check_name == check.value, A.c.last_seen < utc_naive(run_at(ctx)))
    )


async def send_notices(
    ctx: StepContext,
    topic: str,
    recipients: Sequence[str],
    sujet: str,
    texte: str,
    donnees: dict[str, Any],
    priorite: str = Priorite.HAUTE,
) -> int:
    """``ALERTE_SYSTEME`` events to ``recipients`` through the outbox, committed with the slice."""
    if is_dry_run(ctx):
        return 0
    events = []
    for email in recipients:
        try:
            note = notification("ALERTE_SYSTEME", email, sujet, texte, priorite, donnees)
        except NotificationError:
            continue  # an unusable address in userdb must not lose the others' notices
        events.append(OutboxEvent(topic, ctx.job_execution.job_name, note.to_json()))
    if events:
        await enqueue_many(await ctx.session(), events)
        add_counts(ctx, {"notices": len(events)})
    return len(events)


def when(value: datetime | None) -> str:
    """A timestamp for people (report, notices)."""
    return "-" if value is None else value.strftime("%d/%m/%Y %H:%M")
