"""Check 5: notifications notification-service left PENDING for more than a day, re-sent by mail.

Each one is sent from what notification-service stored (``destinataire``,
``sujet``, ``message_texte``/``message_html``), through the same SMTP relay as
the job's other mail. **Never two mails for one notification**: before the
send, the row is claimed in its own committed transaction —
``UPDATE … SET statut='RETRYING', nombre_tentatives = n + 1 WHERE id = ? AND
statut = 'PENDING'`` — and only the run whose update changed the row sends.
The outcome is written right after: SENT with ``date_envoi``; on failure,
back to PENDING with ``erreur_message`` while attempts remain
(``DOCTORAL_NOTIFICATION_MAX_ATTEMPTS``, counted in ``nombre_tentatives``,
one attempt per run) and FAILED once they are spent, the technical admin
being told. A process killed between the claim and the outcome leaves the row
RETRYING: it may or may not have been mailed, so it is never re-sent
automatically; a RETRYING row untouched for an hour is reported for a person.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.core.logging import get_logger
from tranche.doctoral.consistency.anomalies import (
    Anomaly,
    Check,
    forget_resolved,
    is_dry_run,
    record,
    send_notices,
    unreported,
)
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.jobs.common import add_counts, run_at
from tranche.doctoral.mail import MailError
from tranche.doctoral.models import utc_naive
from tranche.doctoral.tables.notification_db import notifications

__all__ = ["STALE_CLAIM", "tasklet"]

log = get_logger(__name__)
CHECK = Check.PENDING_NOTIFICATIONS
N = notifications
#: A RETRYING row untouched for this long was claimed by a run that died mid-send.
STALE_CLAIM = timedelta(hours=1)


def _now() -> datetime:
    return utc_naive(datetime.now(UTC))


async def _claim(deps: Deps, notification_id: int) -> int | None:
    """The attempt number when this run now owns the row, None when someone else does."""
    async with deps.sources.notification_db.transaction() as s:
        result = await s.execute(
            sa.update(N)
            .where(N.c.id == notification_id, N.c.statut == "PENDING")
            .values(
                statut="RETRYING",
                nombre_tentatives=sa.func.coalesce(N.c.nombre_tentatives, 0) + 1,
                date_modification=_now(),
            )
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            return None
        attempts = await s.execute(
            sa.select(N.c.nombre_tentatives).where(N.c.id == notification_id)
        )
        return int(attempts.scalar_one())


async def _settle(deps: Deps, notification_id: int, statut: str, error: str | None) -> None:
    now = _now()
    values: dict[str, object] = {
        "statut": statut,
        "erreur_message": error,
        "date_modification": now,
    }
    if statut == "SENT":
        values["date_envoi"] = now
    async with deps.sources.notification_db.transaction() as s:
        await s.execute(
            sa.update(N).where(N.c.id == notification_id, N.c.statut == "RETRYING").values(**values)
        )


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        dry = is_dry_run(ctx)
        if not deps.mailer.enabled and not dry:
            log.warning("consistency_notifications_no_smtp", reason="DOCTORAL_SMTP_HOST unset")
            add_counts(ctx, {"notificationsNonRenvoyeesSansSmtp": 1})
            return RepeatStatus.FINISHED
        after = int(ctx.step_context.get("after", 0))
        cutoff = utc_naive(run_at(ctx)) - timedelta(
            hours=deps.settings.notification_retry_after_hours
        )
        query = (
            sa.select(
                N.c.id,
                N.c.destinataire,
                N.c.sujet,
                N.c.message_texte,
                N.c.message_html,
                N.c.date_creation,
            )
            .where(N.c.statut == "PENDING", N.c.date_creation < cutoff, N.c.id > after)
            .order_by(N.c.id)
            .limit(deps.chunk_size)
        )
        async with deps.sources.notification_db.sessions() as s:
            rows = (await s.execute(query)).all()
        if not rows:
            await _stale_claims(ctx, deps)
            await forget_resolved(ctx, CHECK)
            await _notify_failed(ctx, deps)
            return RepeatStatus.FINISHED
        found: list[Anomaly] = []
        failed = list(ctx.step_context.get("failed", []))
        for r in rows:
            what = (
                f"Notification {r.id} à {r.destinataire} ({r.sujet or 'sans sujet'}), "
                f"créée le {r.date_creation:%d/%m/%Y %H:%M}"
            )
            if dry:
                found.append(
                    Anomaly(
                        CHECK, f"notification:{r.id}", what, "À faire : renvoyer par mail", False
                    )
                )
                continue
            attempt = await _claim(deps, int(r.id))
            if attempt is None:
                continue  # taken by notification-service or another run meanwhile
            try:
                await deps.mailer.deliver(
                    [str(r.destinataire)],
                    str(r.sujet or "Notification"),
                    str(r.message_texte or ""),
                    str(r.message_html) if r.message_html else None,
                )
            except MailError as exc:
                spent = attempt >= deps.settings.notification_max_attempts
                await _settle(deps, int(r.id), "FAILED" if spent else "PENDING", str(exc))
                if spent:
                    failed.append(int(r.id))
                action = (
                    f"Échec après {attempt} tentative(s) : FAILED, administrateur technique prévenu"
                    if spent
                    else f"Échec de la tentative {attempt} ({exc}) : nouvel essai plus tard"
                )
                found.append(Anomaly(CHECK, f"notification:{r.id}", what, action, corrected=False))
                continue
            await _settle(deps, int(r.id), "SENT", None)
            found.append(
                Anomaly(
                    CHECK,
                    f"notification:{r.id}",
                    what,
                    f"Renvoyée par mail (tentative {attempt}) : SENT",
                    True,
                )
            )
        record(ctx, found)
        ctx.step_context["failed"] = failed
        ctx.step_context["after"] = int(rows[-1].id)
        ctx.count(read=len(rows), write=sum(1 for a in found if a.corrected))
        return RepeatStatus.CONTINUABLE

    return call


async def _stale_claims(ctx: StepContext, deps: Deps) -> None:
    query = (
        sa.select(N.c.id, N.c.destinataire, N.c.date_modification)
        .where(N.c.statut == "RETRYING", N.c.date_modification < _now() - STALE_CLAIM)
        .order_by(N.c.id)
        .limit(10_000)
    )
    async with deps.sources.notification_db.sessions() as s:
        rows = (await s.execute(query)).all()
    stale = [
        Anomaly(
            CHECK,
            f"retrying:{r.id}",
            f"Notification {r.id} à {r.destinataire} : RETRYING depuis le "
            f"{r.date_modification:%d/%m/%Y %H:%M}",
            "Intervention requise : l'envoi a été interrompu, vérifier s'il est parti avant "
            "de la remettre en PENDING",
            corrected=False,
        )
        for r in rows
    ]
    record(ctx, await unreported(ctx, CHECK, stale))


async def _notify_failed(ctx: StepContext, deps: Deps) -> None:
    failed = [int(i) for i in ctx.step_context.get("failed", [])]
    if not failed or is_dry_run(ctx):
        return
    shown = ", ".join(str(i) for i in failed[:50]) + (" …" if len(failed) > 50 else "")
    await send_notices(
        ctx,
        deps.topic,
        await deps.technical_admins(),
        f"[Batch] {len(failed)} notification(s) en échec définitif",
        f"Le renvoi par mail a échoué {deps.settings.notification_max_attempts} fois ; "
        f"statut FAILED. Notifications : {shown}. Vérifier le serveur SMTP et les adresses.",
        {
            "evenement": "NOTIFICATION_RETRY_FAILED",
            "jobName": ctx.job_execution.job_name,
            "executionId": ctx.job_execution.id,
            "notificationIds": failed,
        },
        "URGENTE",
    )
