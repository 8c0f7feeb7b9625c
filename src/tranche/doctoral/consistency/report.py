"""Step 6 (only when a check found something): the anomaly report, filed, mailed, announced.

``anomaly_report_<yyyy_MM_dd_HHmmss>.pdf`` (the run's instant, so a restarted
run replaces its own file rather than adding a second) in the reports
directory, where the reports API lists it; mailed to the technical admin (else
every admin) with the PDF attached; and an ``ALERTE_SYSTEME`` event per
recipient in notification-service's format, carrying the file name and the
counts.

SMTP down is handled as monthlyReportJob's mail step does
(:mod:`tranche.doctoral.reports.distribution`): one message per recipient, so
one refused address does not stop the others, and each outcome is recorded as
it happens — in its own batchdb transaction, not the step's, which rolls back
when the step fails — as an ``ANOMALY_REPORT_MAIL`` audit row (status ``SENT``
or ``FAILED``, the report's file name as ``resource_path``, the recipient and,
when it failed, the SMTP error; never the SMTP credentials). When any
recipient was not reached the step FAILS with :class:`ReportNotDelivered`,
naming them and why: the job ends FAILED and restartable, the failure notifier
tells the admins (its event goes through Kafka, not SMTP), the PDF is kept and
the anomalies stay in the job's context. A restart re-runs only this step and
mails only the recipients without a ``SENT`` row for this report, so each gets
it exactly once. The notices commit with the step, so they too are written
once, by the run that completes.

Failing rather than completing is deliberate: the checks' ledger
(``anomalie_signalee``) commits with their own steps, so the next nightly run
does not report the same anomalies again and corrected ones are gone from the
data — a report that was not delivered can only come from this run's context,
i.e. from restarting it. A crash between the server's acceptance and the audit
commit mails that one recipient twice; no protocol avoids it without the
receiving server's help. With no SMTP host configured nothing is mailed and
the step completes (``mail.skipped``), as for the monthly report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.transient import persist
from tranche.batch.uow import StepContext
from tranche.core.clock import utc_now
from tranche.core.logging import get_logger
from tranche.doctoral.audit import AuditEvent, AuditEventType, AuditLog
from tranche.doctoral.consistency.anomalies import (
    TITLES,
    Check,
    listed,
    send_notices,
    totals,
)
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.consistency.pdf import CheckSection, render, report_name
from tranche.doctoral.jobs.common import add_counts, run_at
from tranche.doctoral.mail import MailError
from tranche.doctoral.models import audit_log
from tranche.doctoral.reports.storage import ReportStore

__all__ = [
    "FAILED",
    "MAIL_ACTION",
    "REPORT_KEY",
    "SENT",
    "MailOutcome",
    "ReportNotDelivered",
    "deliver_report",
    "sections",
    "sent_to",
    "tasklet",
]

log = get_logger(__name__)
#: Job-context key: the report's file name.
REPORT_KEY = "anomalyReport"
#: Audit action of each mail attempt, and its statuses.
MAIL_ACTION = "ANOMALY_REPORT_MAIL"
SENT, FAILED = "SENT", "FAILED"
_SENT_TO = "anomaly report sent to "


class ReportNotDelivered(RuntimeError):
    """Some recipients did not get the anomaly report; the message names them and why."""


@dataclass
class MailOutcome:
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def sections(ctx: StepContext) -> list[CheckSection]:
    out = []
    for check, (fixed, manual) in totals(ctx.job_context).items():
        rows = [(str(r["record"]), str(r["action"])) for r in listed(ctx.job_context, check)]
        out.append(CheckSection(TITLES[Check(check)], fixed, manual, rows))
    return out


async def sent_to(deps: Deps, file_name: str) -> set[str]:
    """Lower-cased addresses that already received the report ``file_name``."""
    query = sa.select(audit_log.c.details).where(
        audit_log.c.event_action == MAIL_ACTION,
        audit_log.c.status == SENT,
        audit_log.c.resource_path == file_name,
    )

    async def read() -> set[str]:
        async with deps.sources.batchdb.sessions() as s:
            details = (await s.execute(query)).scalars()
            return {str(d).removeprefix(_SENT_TO).lower() for d in details if d}

    return await persist(read, "anomaly_report_deliveries")


async def _record(
    audit: AuditLog, ctx: StepContext, file_name: str, status: str, details: str
) -> None:
    event = AuditEvent(
        AuditEventType.JOB_EXECUTION,
        MAIL_ACTION,
        status,
        job_name=ctx.job_execution.job_name,
        execution_id=ctx.job_execution.id,
        user_id="system",
        resource_path=file_name,
        details=details[:2000],
    )
    await persist(lambda: audit.record(event, once=True), "audit")


async def deliver_report(
    deps: Deps,
    ctx: StepContext,
    recipients: Sequence[str],
    file_name: str,
    content: bytes,
    subject: str,
    text: str,
) -> MailOutcome:
    """Mail each recipient who has not had ``file_name`` yet; audit every outcome at once."""
    audit = AuditLog(deps.sources.batchdb, utc_now)
    outcome = MailOutcome()
    done = await sent_to(deps, file_name)
    for to in recipients:
        if to.lower() in done:
            outcome.already.append(to)
            continue
        try:
            await deps.mailer.deliver(
                [to], subject, text, attachments=[(file_name, content, "application/pdf")]
            )
        except MailError as exc:
            log.error("anomaly_report_mail_failed", report=file_name, to=to, error=str(exc))
            outcome.failed[to] = str(exc)
            await _record(audit, ctx, file_name, FAILED, f"anomaly report not sent to {to}: {exc}")
            continue
        outcome.sent.append(to)
        await _record(audit, ctx, file_name, SENT, f"{_SENT_TO}{to}")
    return outcome


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        at = run_at(ctx)
        parts = sections(ctx)
        name = report_name(at)
        content = await asyncio.to_thread(render, at, ctx.job_execution.id, parts)
        store = ReportStore(deps.settings.reports_directory.resolve())
        path = await asyncio.to_thread(store.write, name, content)
        ctx.job_context[REPORT_KEY] = name
        fixed = sum(p.corrected for p in parts)
        manual = sum(p.manual for p in parts)
        summary = "\n".join(
            f"- {p.title} : {p.corrected + p.manual} ({p.corrected} corrigée(s), "
            f"{p.manual} à traiter)"
            for p in parts
        )
        sujet = f"[Batch] Rapport d'anomalies du {at:%d/%m/%Y} : {fixed + manual} anomalie(s)"
        texte = (
            f"La vérification de cohérence du {at:%d/%m/%Y %H:%M} UTC a trouvé "
            f"{fixed + manual} anomalie(s) : {fixed} corrigée(s) automatiquement, "
            f"{manual} nécessitant une intervention.\n{summary}\n"
            f"Rapport : {name} (API /api/batch/reports)."
        )
        recipients = await deps.technical_admins()
        if not deps.mailer.enabled:
            log.info("mail_skipped", reason="no SMTP host", report=name)
            add_counts(ctx, {"mail.skipped": len(recipients)})
        elif not recipients:
            log.warning("anomaly_report_no_recipient", report=name)
        else:
            outcome = await deliver_report(deps, ctx, recipients, path.name, content, sujet, texte)
            if outcome.failed:
                # Who first (the one-line exit message is cut at 300 characters), then why;
                # each recipient's own error is in its audit row.
                errors = " | ".join(dict.fromkeys(outcome.failed.values()))
                raise ReportNotDelivered(
                    f"anomaly report {name} not mailed to {len(outcome.failed)} of "
                    f"{len(recipients)} recipient(s) ({len(outcome.sent)} sent now, "
                    f"{len(outcome.already)} earlier): {', '.join(outcome.failed)}; "
                    f"SMTP: {errors}"[:2000]
                )
            add_counts(
                ctx,
                {
                    "rapportEnvoyeParMail": 1,
                    "mail.sent": len(outcome.sent),
                    "mail.alreadySent": len(outcome.already),
                },
            )
        await send_notices(
            ctx,
            deps.topic,
            recipients,
            sujet,
            texte,
            {
                "evenement": "ANOMALY_REPORT_GENERATED",
                "jobName": ctx.job_execution.job_name,
                "executionId": ctx.job_execution.id,
                "fichier": name,
                "anomaliesTotal": fixed + manual,
                "corrigees": fixed,
                "aTraiter": manual,
            },
        )
        log.info("anomaly_report_written", report=str(path), anomalies=fixed + manual)
        return RepeatStatus.FINISHED

    return call
