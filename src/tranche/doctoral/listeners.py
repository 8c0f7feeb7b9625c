"""Job listeners every doctoral job carries: history + audit + metrics, failure alerts, anomalies.

After every run: a ``job_execution_history`` row, a ``JOB_EXECUTION`` audit
entry, metrics and a log line with the job's counts. After a failed run: an
``ALERTE_SYSTEME``/URGENTE event per admin through the outbox (delivered by
notification-service) and a direct mail to the same admins — the mail does
not depend on the broker or on notification-service, one of which may be
the very thing that is down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from tranche.batch import FAILURE_DETAIL, SkipLimitExceededError
from tranche.batch.listeners import BatchListener
from tranche.batch.model import BatchStatus, JobExecution
from tranche.batch.operations import CRASHED
from tranche.batch.transient import is_transient_db_error, persist
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.doctoral.audit import AuditEvent, AuditEventType, AuditLog
from tranche.doctoral.history import record_run
from tranche.doctoral.jobs.common import RUN_AT, Estimate, counts_of
from tranche.doctoral.mail import Mailer, MailError, admin_emails
from tranche.doctoral.metrics import DoctoralMetrics
from tranche.doctoral.notifications import (
    Priorite,
    TypeNotification,
    failure_notification,
    notification,
)

__all__ = [
    "ESTIMATED_TOTAL",
    "TRIGGERED_BY",
    "AnomalyNotifier",
    "FailureNotifier",
    "ProgressEstimator",
    "RunRecorder",
    "estimated_total",
    "failure_traceback",
]

log = get_logger(__name__)

#: Non-identifying job parameter naming who started the run (scheduler, cli, an admin's email).
TRIGGERED_BY = "triggeredBy"


#: Job-context key: the items the readers expected when the run started (progress bars).
ESTIMATED_TOTAL = "estimatedTotal"


def estimated_total(execution: JobExecution) -> int | None:
    value = execution.context.get(ESTIMATED_TOTAL)
    return int(value) if isinstance(value, int | float) else None


def failure_traceback(execution: JobExecution) -> str | None:
    value = execution.context.get(FAILURE_DETAIL)
    return str(value) if value else None


@dataclass
class ProgressEstimator(BatchListener):
    """Stores the job's estimate of its items at the start, so progress can be shown.

    A restart keeps the first attempt's estimate (its counts carry over with the context).
    The estimate is a count query; if it fails the run goes on without one.
    """

    estimates: Mapping[str, Estimate | None]

    async def before_job(self, execution: JobExecution) -> None:
        estimate = self.estimates.get(execution.job_name)
        if estimate is None or ESTIMATED_TOTAL in execution.context:
            return
        at = execution.parameters.value(RUN_AT)
        when = at if isinstance(at, datetime) else (execution.start_time or datetime.now(UTC))
        try:
            execution.context[ESTIMATED_TOTAL] = int(await estimate(when.astimezone(UTC)))
        except Exception as exc:
            log.warning(
                "progress_estimate_failed",
                job=execution.job_name,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )


def _triggered_by(execution: JobExecution) -> str | None:
    value = execution.parameters.value(TRIGGERED_BY)
    return None if value is None else str(value)


@dataclass
class RunRecorder(BatchListener):
    batchdb: Database
    audit: AuditLog
    metrics: DoctoralMetrics
    _carried: dict[int, dict[str, int]] = field(default_factory=dict)

    async def before_job(self, execution: JobExecution) -> None:
        # A restart carries the failed attempt's job context (and its counts) over.
        self._carried[execution.id] = counts_of(execution)

    async def after_job(self, execution: JobExecution) -> None:
        counts = counts_of(execution)
        carried = self._carried.pop(execution.id, {})
        log.info(
            "job_finished",
            job=execution.job_name,
            execution_id=execution.id,
            status=execution.status.value,
            counts=counts,
        )
        fresh = {k: v - carried.get(k, 0) for k, v in counts.items()}
        self.metrics.finished(execution, {k: v for k, v in fresh.items() if v > 0})
        # batchdb may be restarting right now (it may be why the run failed): the history
        # and audit rows wait for it like the engine's own end-of-run write does.
        who = _triggered_by(execution)
        await persist(lambda: record_run(self.batchdb, execution, counts, who), "history")
        details = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "no items"
        event = AuditEvent(
            AuditEventType.JOB_EXECUTION,
            "RUN",
            execution.status.value,
            job_name=execution.job_name,
            execution_id=execution.id,
            user_id=who,
            details=f"{details}; exit: {execution.exit_status.exit_code}",
        )
        await persist(lambda: self.audit.record(event, once=True), "audit")


@dataclass
class FailureNotifier(BatchListener):
    batchdb: Database
    userdb: Database
    topic: str
    configured_admins: list[str]
    mailer: Mailer
    audit: AuditLog | None = None

    async def after_job(self, execution: JobExecution) -> None:
        if execution.status is not BatchStatus.FAILED:
            return
        admins = await admin_emails(self.userdb, self.configured_admins)
        failed_at = execution.end_time or datetime.now(UTC)
        message = execution.exit_status.exit_description or "no detail recorded"
        action = french_action(execution)
        notes = [
            failure_notification(
                email,
                execution.job_name,
                execution.id,
                failed_at,
                execution.exit_status.exit_code,
                message,
                restartable=True,
                action=action,
            )
            for email in admins
        ]
        if not notes:
            log.error("job_failure_unnotified", job=execution.job_name, reason="no admin email")
            return
        events = [OutboxEvent(self.topic, execution.job_name, n.to_json()) for n in notes]

        async def enqueue() -> None:
            async with self.batchdb.transaction() as session:
                await enqueue_many(session, events)

        try:
            await persist(enqueue, "failure_events")
        except Exception as exc:
            log.error("job_failure_event_lost", job=execution.job_name, error=str(exc)[:300])
        if not self.mailer.enabled:
            log.info("mail_skipped", reason="no SMTP host")
            return
        try:
            await self.mailer.deliver(admins, notes[0].sujet, notes[0].message_texte)
        except MailError as exc:
            # SMTP down: the event above still reaches the admins through Kafka once the
            # broker has it; the undelivered mail is recorded where admins look (the audit
            # log, GET /api/batch/audit), not only in a log line.
            await self._record_unsent(execution, admins, str(exc))

    async def _record_unsent(self, execution: JobExecution, admins: list[str], error: str) -> None:
        audit = self.audit
        if audit is None:
            return
        event = AuditEvent(
            AuditEventType.JOB_EXECUTION,
            "FAILURE_MAIL",
            "FAILED",
            job_name=execution.job_name,
            execution_id=execution.id,
            user_id="system",
            details=f"failure mail not sent to {', '.join(admins)}: {error}"[:2000],
        )
        try:
            await persist(lambda: audit.record(event, once=True), "audit")
        except Exception as exc:
            log.error("failure_mail_unrecorded", job=execution.job_name, error=str(exc)[:300])


def french_action(execution: JobExecution) -> str:
    """What an admin should do first, in the mail's language, from how the run failed."""
    if execution.exit_status.exit_code == CRASHED:
        return (
            "le processus qui exécutait le job s'est arrêté brutalement (arrêt forcé, mémoire, "
            "machine perdue) ; vérifier l'hôte et ses journaux"
        )
    errors = execution.all_failure_exceptions()
    if any(isinstance(e, SkipLimitExceededError) for e in errors):
        return "trop d'éléments refusés : corriger les données signalées dans les journaux"
    if any(is_transient_db_error(e) or isinstance(e, OSError | TimeoutError) for e in errors):
        return (
            "une base de données ou un serveur était injoignable ou surchargé : "
            "vérifier qu'il répond"
        )
    if any(isinstance(e, DBAPIError) for e in errors):
        return (
            "une base de données a refusé la requête du job : vérifier son schéma et ses "
            "données (celles du service propriétaire)"
        )
    return "consulter le détail technique et corriger la cause"


@dataclass
class AnomalyNotifier(BatchListener):
    """Tells the admins, once per run, about items the job could not handle on its own."""

    batchdb: Database
    userdb: Database
    topic: str
    configured_admins: list[str]
    context_key: str
    what: str

    async def after_job(self, execution: JobExecution) -> None:
        entries = list(execution.context.get(self.context_key, []))
        if not entries:
            return
        # Entries are ids, or {"inscriptionId"/"id": …, "raison": …} when the job knows why.
        ids = [_entry_id(e) for e in entries]
        reasons: dict[str, list[str]] = {}
        for entry in entries:
            if isinstance(entry, dict) and entry.get("raison"):
                reasons.setdefault(str(entry["raison"]), []).append(str(_entry_id(entry)))
        admins = await admin_emails(self.userdb, self.configured_admins)
        shown = ", ".join(str(i) for i in ids[:50]) + (" …" if len(ids) > 50 else "")
        text = f"{self.what}\nIdentifiants : {shown}"
        if reasons:
            text += "\n" + "\n".join(
                f"- {why} : {', '.join(which[:50])}" for why, which in reasons.items()
            )
        notes = [
            notification(
                TypeNotification.ALERTE_SYSTEME,
                email,
                f"[Batch] {execution.job_name} : {len(ids)} cas à traiter manuellement",
                text,
                Priorite.HAUTE,
                {
                    "evenement": "DATA_ANOMALY",
                    "jobName": execution.job_name,
                    "executionId": execution.id,
                    "identifiants": ids,
                    "details": [e for e in entries if isinstance(e, dict)],
                },
            )
            for email in admins
        ]
        if notes:
            async with self.batchdb.transaction() as session:
                await enqueue_many(
                    session,
                    [OutboxEvent(self.topic, execution.job_name, n.to_json()) for n in notes],
                )
        log.warning("job_anomalies", job=execution.job_name, count=len(ids), ids=ids[:50])


def _entry_id(entry: Any) -> Any:
    if isinstance(entry, dict):
        return entry.get("inscriptionId", entry.get("id"))
    return entry
