"""Step 6 (only when a check found something): the anomaly report, filed, mailed, announced.

``anomaly_report_<yyyy_MM_dd_HHmmss>.pdf`` (the run's instant, so a restarted
run replaces its own file rather than adding a second) in the reports
directory, where the reports API lists it; mailed to the technical admin with
the PDF attached; and an ``ALERTE_SYSTEME`` event per technical admin in
notification-service's format, carrying the file name and the counts. The
events commit with the step; the mail cannot, so a run that fails after mailing
and is restarted mails the (same) report again — a duplicate report is harmless,
a lost one is not.
"""

from __future__ import annotations

import asyncio

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.core.logging import get_logger
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
from tranche.doctoral.reports.storage import ReportStore

__all__ = ["REPORT_KEY", "sections", "tasklet"]

log = get_logger(__name__)
#: Job-context key: the report's file name.
REPORT_KEY = "anomalyReport"


def sections(ctx: StepContext) -> list[CheckSection]:
    out = []
    for check, (fixed, manual) in totals(ctx.job_context).items():
        rows = [(str(r["record"]), str(r["action"])) for r in listed(ctx.job_context, check)]
        out.append(CheckSection(TITLES[Check(check)], fixed, manual, rows))
    return out


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
        try:
            await deps.mailer.deliver(
                recipients, sujet, texte, attachments=[(path.name, content, "application/pdf")]
            )
            add_counts(ctx, {"rapportEnvoyeParMail": 1})
        except MailError as exc:
            log.error("anomaly_report_mail_failed", report=name, error=str(exc))
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
