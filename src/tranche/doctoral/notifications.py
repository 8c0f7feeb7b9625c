"""Events in notification-service's own format, the only shape it delivers (reference §7).

``{"type", "destinataire", "sujet", "messageTexte", "priorite", "donnees"}``:
``type`` is one of its ``TypeNotification`` values (``RAPPEL_ECHEANCE`` for
duration alerts, ``ALERTE_SYSTEME`` for technical ones), ``destinataire`` one
email address, ``priorite`` NORMALE/HAUTE/URGENTE, and everything the batch
knows about the case goes in ``donnees`` (its templates' variables). The
original batch-service sent its own DTOs (``priority`` HIGH, no
``destinataire``…), which the consumer dropped; building every event through
:func:`notification` makes that impossible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from tranche.doctoral.tables.notification_db import PRIORITES, TYPES

__all__ = [
    "EMAIL_PATTERN",
    "Notification",
    "NotificationError",
    "Priorite",
    "TypeNotification",
    "failure_notification",
    "notification",
    "without_paths",
]

#: The consumer's check on ``destinataire`` (a plain address, no display name).
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class Priorite(StrEnum):
    NORMALE = "NORMALE"
    HAUTE = "HAUTE"
    URGENTE = "URGENTE"


class TypeNotification(StrEnum):
    RAPPEL_ECHEANCE = "RAPPEL_ECHEANCE"
    ALERTE_SYSTEME = "ALERTE_SYSTEME"


class NotificationError(ValueError):
    """The event would be dropped by notification-service; the message says which field."""


@dataclass(frozen=True)
class Notification:
    type: str
    destinataire: str
    sujet: str
    message_texte: str
    priorite: str
    donnees: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "destinataire": self.destinataire,
            "sujet": self.sujet,
            "messageTexte": self.message_texte,
            "priorite": self.priorite,
            "donnees": dict(self.donnees),
        }


#: Values that are template variables as they are (most of them): no conversion needed.
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    # Template variables: dates as ISO strings (Jackson's default for java.time
    # without @JsonFormat is an array, which templates cannot print).
    if isinstance(value, datetime):
        return value.replace(microsecond=0).isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def notification(
    type_: str,
    destinataire: str,
    sujet: str,
    message_texte: str,
    priorite: str = Priorite.NORMALE,
    donnees: Mapping[str, Any] | None = None,
) -> Notification:
    """A validated event, or :class:`NotificationError` naming the field the consumer rejects."""
    if type_ not in TYPES:
        raise NotificationError(f"type {type_!r} is not a TypeNotification of notification-service")
    if priorite not in PRIORITES:
        raise NotificationError(f"priorite {priorite!r} must be one of {', '.join(PRIORITES)}")
    if not EMAIL_PATTERN.match(destinataire or ""):
        raise NotificationError(f"destinataire {destinataire!r} is not an email address")
    if not sujet or not sujet.strip():
        raise NotificationError("sujet must not be blank")
    # The type test inline: an alert run builds thousands of these, each with ~16 values.
    clean = {str(k): v if type(v) in _SCALARS else _plain(v) for k, v in (donnees or {}).items()}
    return Notification(
        str(type_), destinataire, sujet.strip()[:255], message_texte, str(priorite), clean
    )


#: An absolute server path (two or more segments): never shown in a mail or an event.
_PATH = re.compile(r"(?<![\w:/])(?:/[\w.\-]+){2,}/?")


def without_paths(text: str) -> str:
    return _PATH.sub("<chemin>", text)


def failure_notification(
    destinataire: str,
    job_name: str,
    execution_id: int,
    failure_time: datetime,
    exit_code: str,
    exit_message: str,
    restartable: bool,
    action: str | None = None,
) -> Notification:
    """``ALERTE_SYSTEME``/URGENTE to one admin about a failed job execution.

    The text is for a person: the one-line cause, what to do (``action``, French), and
    where the traceback is (the admin API, never the mail). Server paths are masked.
    """
    cause = without_paths(exit_message.split(" — ", 1)[0].strip() or "cause inconnue")
    suggestion = (
        f"Corriger la cause puis relancer : tranche job restart {execution_id} "
        f"(ou POST /api/batch/jobs/executions/{execution_id}/restart)"
        if restartable
        else f"Corriger la cause ; la prochaine exécution planifiée de {job_name} reprendra"
    )
    todo = f"{action} ; {suggestion[0].lower()}{suggestion[1:]}" if action else suggestion
    return notification(
        TypeNotification.ALERTE_SYSTEME,
        destinataire,
        f"[Batch] Échec du job {job_name} (exécution {execution_id})",
        f"Le job {job_name} (exécution {execution_id}) a échoué le "
        f"{failure_time:%d/%m/%Y à %H:%M} UTC.\n"
        f"Cause : {cause}\n"
        f"Que faire : {todo}.\n"
        f"Détail technique : GET /api/batch/jobs/executions/{execution_id} (administrateurs).",
        Priorite.URGENTE,
        {
            "evenement": "JOB_FAILURE",
            "jobName": job_name,
            "executionId": execution_id,
            "failureTime": failure_time,
            "exitCode": exit_code,
            "exitMessage": without_paths(exit_message)[:2000],
            "cause": cause,
            "restartable": restartable,
            "suggestedAction": todo,
        },
    )
