"""dureeDoctoratAlertJob: warn doctorants and directors as the thesis nears 3 and 6 years.

For each doctorant's current validated enrollment, the whole months since
``date_premiere_inscription`` decide (:mod:`tranche.doctoral.durations`):
[33, 36) without derogation → 3-year reminder (NORMALE); [69, 72) → 6-year
reminder (HAUTE); ≥ 72 → exceeded (URGENTE) and re-enrollment blocked with the
owner's own flag, ``bloque_re_inscription = 1`` (there is no BLOQUÉ status).

Each alert type is sent once per doctorant, ever: ``alerte_duree_envoyee``
(unique per enrollment and type) is written in the same batchdb transaction
as the outbox rows, so a crash cannot send without recording or record
without sending. The block is written to inscription_db first (the unit of
work commits other databases before batchdb); it is idempotent and is retried
on every run while the enrollment is still unblocked. Both recipients get a
``RAPPEL_ECHEANCE`` in notification-service's format on topic
``notifications``, keyed by the doctorant id. An enrollment whose doctorant
and director are both missing from userdb, or whose addresses notification-service
would refuse, cannot be notified: it is counted as an anomaly for a person to look
at and tried again next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from tranche.batch.job import ChunkStep, ItemWriter, Job
from tranche.batch.listeners import BatchListener
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.outbox import OutboxEvent, enqueue_many
from tranche.doctoral.durations import (
    AlertType,
    Thresholds,
    add_months,
    classify,
    describe_duration,
    priority_of,
    whole_months,
)
from tranche.doctoral.jobs.common import JobSpec, add_counts, run_at
from tranche.doctoral.jobs.duree_reader import Enrollment, EnrollmentReader, Person
from tranche.doctoral.models import alerte_duree_envoyee, utc_naive
from tranche.doctoral.notifications import (
    Notification,
    NotificationError,
    TypeNotification,
    notification,
)
from tranche.doctoral.tables.inscription_db import inscriptions

__all__ = [
    "ANOMALIES_KEY",
    "DESCRIPTION",
    "JOB_NAME",
    "AlertDecision",
    "build",
    "decide",
    "messages",
]

log = get_logger(__name__)

JOB_NAME = "dureeDoctoratAlertJob"
DESCRIPTION = (
    "Monitors doctoral duration and alerts doctorants and directors at 3 years, "
    "6 years and beyond (blocking re-enrollment)"
)
#: Job-context key listing enrollments nobody could be notified about (capped).
ANOMALIES_KEY = "anomalies"
_MAX_ANOMALIES = 200

_SEUIL = {AlertType.TROIS_ANS: "3 ans", AlertType.SIX_ANS: "6 ans", AlertType.DEPASSEMENT: "6 ans"}
_ACTION = {
    AlertType.TROIS_ANS: (
        "Préparer la soutenance avant la fin de la 3e année, ou demander une dérogation "
        "auprès du pôle études doctorales"
    ),
    AlertType.SIX_ANS: "Planifier la soutenance avant la limite absolue de 6 ans",
    AlertType.DEPASSEMENT: (
        "Durée maximale dépassée : la réinscription est bloquée, contacter l'administration"
    ),
}


@dataclass(frozen=True)
class AlertDecision:
    enrollment: Enrollment
    alert: AlertType
    months: int
    send: bool
    block: bool


def decide(item: Enrollment, thresholds: Thresholds) -> AlertDecision | None:
    """What to do about one enrollment (None: nothing, the item is filtered)."""
    if not item.is_current:
        return None  # an older enrollment of the same thesis: its latest one speaks for it
    months = whole_months(item.date_premiere_inscription, item.run_date)
    alert = classify(months, item.derogation, thresholds)
    if alert is None:
        return None
    send = alert.value not in item.already_sent
    block = alert is AlertType.DEPASSEMENT and not item.bloque_re_inscription
    if not send and not block:
        return None
    return AlertDecision(item, alert, months, send, block)


def _remaining(decision: AlertDecision, thresholds: Thresholds) -> int | None:
    if decision.alert is AlertType.TROIS_ANS:
        return thresholds.three_until - decision.months
    if decision.alert is AlertType.SIX_ANS:
        return thresholds.max_months - decision.months
    return None


def messages(decision: AlertDecision, thresholds: Thresholds) -> list[Notification]:
    """The RAPPEL_ECHEANCE events for the doctorant and the director (those known to userdb)."""
    e = decision.enrollment
    remaining = _remaining(decision, thresholds)
    seuil = _SEUIL[decision.alert]
    duree = describe_duration(decision.months)
    limit = add_months(e.date_premiere_inscription, thresholds.max_months)
    donnees = {
        "alerteType": decision.alert.value,
        "inscriptionId": e.inscription_id,
        "doctorantId": e.doctorant_id,
        "doctorantNom": e.doctorant.full_name if e.doctorant else None,
        "directeurNom": e.directeur.full_name if e.directeur else None,
        "datePremiereInscription": e.date_premiere_inscription,
        "dureeActuelle": duree,
        "moisEcoules": decision.months,
        "tempsRestant": f"{remaining} mois" if remaining is not None else None,
        "seuil": seuil,
        "dateLimite": limit,
        "actionRequise": _ACTION[decision.alert],
        "reinscriptionBloquee": decision.alert is AlertType.DEPASSEMENT,
    }
    if decision.alert is AlertType.DEPASSEMENT:
        sujet = "Durée maximale du doctorat dépassée : réinscription bloquée"
    else:
        sujet = f"Rappel : votre doctorat approche {seuil}"
    body = (
        f"Doctorat commencé le {e.date_premiere_inscription:%d/%m/%Y} : durée actuelle {duree}"
        + (f", il reste {remaining} mois avant le seuil de {seuil}" if remaining else "")
        + f". Action requise : {_ACTION[decision.alert]}."
    )
    out = []
    recipients: list[tuple[Person | None, str]] = [
        (e.doctorant, "DOCTORANT"),
        (e.directeur, "DIRECTEUR_THESE"),
    ]
    for person, role in recipients:
        if person is None:
            continue
        subject = sujet if role == "DOCTORANT" else f"{sujet} ({donnees['doctorantNom'] or ''})"
        try:
            out.append(
                notification(
                    TypeNotification.RAPPEL_ECHEANCE,
                    person.email,
                    subject,
                    body,
                    priority_of(decision.alert),
                    {**donnees, "destinataireRole": role},
                )
            )
        except NotificationError as exc:
            # One malformed address in userdb must not hold up everyone else's alerts.
            log.warning(
                "alert_recipient_unusable",
                inscription_id=e.inscription_id,
                user_id=person.id,
                role=role,
                reason=str(exc),
            )
    return out


def _writer(
    inscription_db: Database, topic: str, thresholds: Thresholds
) -> ItemWriter[AlertDecision]:
    async def write(decisions: Sequence[AlertDecision], ctx: StepContext) -> None:
        counts: dict[str, int] = {}
        to_block = [d.enrollment.inscription_id for d in decisions if d.block]
        if to_block:
            session = await ctx.session(inscription_db.engine)
            await session.execute(
                sa.update(inscriptions)
                .where(inscriptions.c.id.in_(to_block))
                .values(bloque_re_inscription=True)
            )
            counts["reinscriptionsBloquees"] = len(to_block)
        now = utc_naive(datetime.now(UTC))
        ledger, events, anomalies = [], [], []
        for d in decisions:
            if not d.send:
                continue
            notes = messages(d, thresholds)
            if not notes:
                anomalies.append(d.enrollment.inscription_id)
                continue
            ledger.append(
                {
                    "inscription_id": d.enrollment.inscription_id,
                    "doctorant_id": d.enrollment.doctorant_id,
                    "type_alerte": d.alert.value,
                    "date_envoi": now,
                    "mois_ecoules": d.months,
                    "job_execution_id": ctx.job_execution.id,
                }
            )
            events += [
                OutboxEvent(topic, str(d.enrollment.doctorant_id), n.to_json()) for n in notes
            ]
            counts[f"alertes.{d.alert.value}"] = counts.get(f"alertes.{d.alert.value}", 0) + 1
        batch = await ctx.session()
        if ledger:
            await batch.execute(sa.insert(alerte_duree_envoyee), ledger)
            await enqueue_many(batch, events)
            counts["notifications"] = len(events)
        if anomalies:
            counts["anomalies"] = len(anomalies)
            known = list(ctx.job_context.get(ANOMALIES_KEY, []))
            ctx.job_context[ANOMALIES_KEY] = (known + anomalies)[:_MAX_ANOMALIES]
        add_counts(ctx, counts)

    return write


def build(
    batchdb: Database,
    inscription_db: Database,
    userdb: Database,
    thresholds: Thresholds,
    topic: str,
    chunk_size: int,
    cron: str,
    listeners: Sequence[BatchListener] = (),
) -> JobSpec:
    def reader(ctx: StepContext) -> EnrollmentReader:
        return EnrollmentReader(inscription_db, batchdb, userdb, run_at(ctx).date(), chunk_size)

    async def process(item: Enrollment) -> AlertDecision | None:
        return decide(item, thresholds)

    step = ChunkStep(
        "checkDureeDoctoratStep",
        reader=reader,
        processor=process,
        writer=_writer(inscription_db, topic, thresholds),
        chunk_size=chunk_size,
    )

    async def estimate(_at: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(inscriptions)
            .where(
                inscriptions.c.statut == "VALIDE",
                inscriptions.c.date_premiere_inscription.is_not(None),
            )
        )
        async with inscription_db.sessions() as s:
            return int((await s.execute(query)).scalar_one())

    job = Job(JOB_NAME, [step], listeners=listeners, description=DESCRIPTION)
    return JobSpec(job, cron, DESCRIPTION, estimate)
