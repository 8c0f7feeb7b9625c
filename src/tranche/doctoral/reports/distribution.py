"""Getting the report to people: one mail per recipient with the PDF, and the portal's event.

Recipients are userdb's enabled ROLE_ADMIN users plus ``DOCTORAL_REPORT_RECIPIENTS``
(:func:`tranche.doctoral.mail.admin_emails`). Each gets their own message, so
one refused address does not stop the others; each outcome is recorded in
``report_deliveries`` as it happens, and a recipient already SENT for the month
is never mailed again (restart, re-run). When any recipient failed the step
raises :class:`DeliveryFailed` — the job ends FAILED, restartable, with the PDF
kept and the other recipients' mails gone — so the failure is seen (the
failure notifier tells the admins through Kafka) and a restart finishes the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.mail import Mailer, MailError
from tranche.doctoral.notifications import Notification, NotificationError, notification
from tranche.doctoral.reports import deliveries
from tranche.doctoral.reports.content import Thresholds, alerts, change_text, kpis, number
from tranche.doctoral.reports.period import Month

__all__ = ["DeliveryFailed", "Outcome", "deliver_all", "mail_text", "report_events"]

log = get_logger(__name__)


class DeliveryFailed(RuntimeError):
    """Some recipients did not get the report; the message names them and why."""


@dataclass
class Outcome:
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def mail_text(
    month: Month,
    institution: str,
    url: str,
    stats: Mapping[str, Mapping[str, Any]],
    thresholds: Thresholds,
) -> tuple[str, str]:
    """Subject and plain-text body: the dashboard in a few lines, the alerts, the link."""
    subject = f"Rapport mensuel — {month.label} ({institution})"
    lines = [
        "Bonjour,",
        "",
        f"Le rapport mensuel de {institution} pour {month.label} est joint à ce message.",
        "",
    ]
    lines += [f"- {k.title} : {number(k.current, k.unit)} ({change_text(k)})" for k in kpis(stats)]
    found = alerts(stats, thresholds)
    lines += ["", "Alertes :" if found else "Aucun seuil d'alerte n'est franchi ce mois-ci."]
    lines += [f"- {a}" for a in found]
    lines += ["", f"Téléchargement : {url}", "", "— batch-service (message automatique)"]
    return subject, "\n".join(lines)


async def deliver_all(
    batchdb: Database,
    mailer: Mailer,
    recipients: Sequence[str],
    month: Month,
    file_name: str,
    content: bytes,
    subject: str,
    body: str,
    execution_id: int,
) -> Outcome:
    """Mail each recipient not yet served for ``month``; record every outcome."""
    outcome = Outcome()
    done = await deliveries.sent_to(batchdb, str(month))
    for to in recipients:
        if to.lower() in done:
            outcome.already.append(to)
            continue
        if not mailer.enabled:
            await deliveries.record(
                batchdb,
                str(month),
                file_name,
                to,
                deliveries.SKIPPED,
                "no SMTP host configured (DOCTORAL_SMTP_HOST)",
                execution_id,
            )
            outcome.skipped.append(to)
            continue
        try:
            await mailer.deliver(
                [to], subject, body, attachments=[(file_name, content, "application/pdf")]
            )
        except MailError as exc:
            log.error("report_mail_failed", to=to, month=str(month), error=str(exc))
            await deliveries.record(
                batchdb, str(month), file_name, to, deliveries.FAILED, str(exc), execution_id
            )
            outcome.failed[to] = str(exc)
            continue
        await deliveries.record(
            batchdb, str(month), file_name, to, deliveries.SENT, None, execution_id
        )
        outcome.sent.append(to)
    return outcome


def report_events(
    recipients: Sequence[str],
    month: Month,
    file_name: str,
    url: str,
    size: int,
    execution_id: int,
) -> list[Notification]:
    """NOTIFICATION_GENERALE per recipient, in notification-service's format."""
    out = []
    for to in recipients:
        try:
            out.append(
                notification(
                    "NOTIFICATION_GENERALE",
                    to,
                    f"Rapport mensuel — {month.label} disponible",
                    f"Le rapport mensuel de {month.label} est disponible : {url}",
                    "NORMALE",
                    {
                        "evenement": "MONTHLY_REPORT_GENERATED",
                        "reportMonth": str(month),
                        "fileName": file_name,
                        "downloadUrl": url,
                        "fileSizeBytes": size,
                        "executionId": execution_id,
                    },
                )
            )
        except NotificationError as exc:
            log.warning("report_event_recipient_unusable", to=to, reason=str(exc))
    return out
