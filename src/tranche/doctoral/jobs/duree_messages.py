"""The French texts of the thesis-duration reminders, one written to each recipient.

The doctorant reads « votre doctorat … »; the thesis director reads « votre
doctorant(e) X … » with what a director can do. Both events carry the same
``donnees`` (the consumer's template variables) plus ``destinataireRole``.
A recipient whose userdb address notification-service would refuse is left
out; :func:`unreachable_reason` says, for the admins, why nobody could be told.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import orjson

from tranche.core.logging import get_logger
from tranche.doctoral.durations import (
    AlertRule,
    AlertType,
    describe_duration,
    priority_of,
    whole_months,
)
from tranche.doctoral.jobs.duree_reader import Enrollment, Person
from tranche.doctoral.notifications import EMAIL_PATTERN, TypeNotification

__all__ = ["AlertDecision", "payloads", "unreachable_reason"]

log = get_logger(__name__)

_SEUIL = {
    AlertType.APPROCHE_3_ANS: "3 ans",
    AlertType.APPROCHE_6_ANS: "6 ans",
    AlertType.DEPASSE_6_ANS: "6 ans",
}


@dataclass(frozen=True)
class AlertDecision:
    """What the job does about one enrollment.

    ``send``: remind (not sent to this doctorant before); ``record``: write the
    owner's ``alertes_duree`` row (none of this type yet); ``block``: set
    ``bloque_re_inscription`` (with the DEPASSE_6_ANS row, once).
    """

    enrollment: Enrollment
    alert: AlertType
    months: int
    send: bool
    record: bool
    block: bool


class _Facts(NamedTuple):
    """What every text of one decision says (a tuple: built thousands of times a run)."""

    alert: AlertType
    passed_three: bool
    derogation: bool
    start: date
    threshold: date
    remaining: int | None
    duree: str


def _facts(d: AlertDecision, rule: AlertRule) -> _Facts:
    e = d.enrollment
    threshold = rule.threshold_date(d.alert, e.date_premiere_inscription)
    remaining = None
    if d.alert is not AlertType.DEPASSE_6_ANS and threshold > e.run_date:
        remaining = max(whole_months(e.run_date, threshold), 0)
    return _Facts(
        d.alert,
        rule.three_years_passed(e.date_premiere_inscription, e.run_date),
        e.derogation,
        e.date_premiere_inscription,
        threshold,
        remaining,
        describe_duration(d.months),
    )


def _situation(f: _Facts) -> str:
    if f.alert is AlertType.DEPASSE_6_ANS:
        return (
            f"La durée maximale de 6 ans a été atteinte le {_day(f.threshold)} : "
            "la réinscription est bloquée."
        )
    if f.alert is AlertType.APPROCHE_3_ANS and f.passed_three:
        return f"Le seuil de 3 ans a été franchi le {_day(f.threshold)}."
    when = f"le {_day(f.threshold)}"
    if f.remaining:
        return f"Il reste {f.remaining} mois avant le seuil de {_SEUIL[f.alert]} ({when})."
    return f"Le seuil de {_SEUIL[f.alert]} sera atteint {when}."


def _doctorant_action(f: _Facts) -> str:
    if f.alert is AlertType.DEPASSE_6_ANS:
        return "contacter le pôle études doctorales au sujet de la suite de votre doctorat"
    if f.alert is AlertType.APPROCHE_6_ANS:
        return "planifier votre soutenance avant la limite absolue de 6 ans"
    if f.derogation:
        return "votre dérogation est enregistrée ; préparer la soutenance avant la limite de 6 ans"
    if f.passed_three:
        return (
            "demander une dérogation auprès du pôle études doctorales pour pouvoir vous réinscrire"
        )
    return (
        "préparer votre soutenance avant la fin de la 3e année, ou demander une dérogation "
        "auprès du pôle études doctorales"
    )


def _director_action(f: _Facts) -> str:
    if f.alert is AlertType.DEPASSE_6_ANS:
        return "contacter le pôle études doctorales au sujet de la suite de ce doctorat"
    if f.alert is AlertType.APPROCHE_6_ANS:
        return "organiser la soutenance de votre doctorant(e) avant la limite absolue de 6 ans"
    if f.derogation:
        return "accompagner votre doctorant(e) vers la soutenance avant la limite de 6 ans"
    return "accompagner votre doctorant(e) vers la soutenance ou appuyer sa demande de dérogation"


def _doctorant_subject(f: _Facts) -> str:
    if f.alert is AlertType.DEPASSE_6_ANS:
        return "Durée maximale du doctorat dépassée : réinscription bloquée"
    if f.alert is AlertType.APPROCHE_6_ANS:
        return "Rappel : votre doctorat approche la limite de 6 ans"
    if f.passed_three:
        return "Rappel : votre doctorat a dépassé 3 ans"
    return "Rappel : votre doctorat approche 3 ans"


def _director_subject(f: _Facts, name: str) -> str:
    if f.alert is AlertType.DEPASSE_6_ANS:
        return f"Doctorat de {name} : durée maximale dépassée, réinscription bloquée"
    if f.alert is AlertType.APPROCHE_6_ANS:
        return f"Rappel : le doctorat de {name} approche la limite de 6 ans"
    if f.passed_three:
        return f"Rappel : le doctorat de {name} a dépassé 3 ans"
    return f"Rappel : le doctorat de {name} approche 3 ans"


def _greeting(person: Person) -> str:
    return f"Bonjour {person.full_name}," if person.full_name else "Bonjour,"


def _day(d: date) -> str:
    """``dd/mm/yyyy`` (``f"{d:%d/%m/%Y}"`` goes through strftime: three times slower)."""
    return f"{d.day:02d}/{d.month:02d}/{d.year:04d}"


def _texts(
    f: _Facts, e: Enrollment, role: str, person: Person, start: str, situation: str
) -> tuple[str, str, str]:
    """(subject, body, action) for one recipient; ``start`` and ``situation`` as rendered."""
    if role == "DOCTORANT":
        action = _doctorant_action(f)
        body = (
            f"{_greeting(person)}\n\nVotre doctorat a commencé le {start} : "
            f"sa durée est aujourd'hui de {f.duree}. {situation}\n"
            f"Action requise : {action}."
        )
        return _doctorant_subject(f), body, action
    name = e.doctorant.full_name if e.doctorant else f"doctorant n° {e.doctorant_id}"
    action = _director_action(f)
    body = (
        f"{_greeting(person)}\n\nVotre doctorant(e) {name}, inscrit(e) en doctorat depuis le "
        f"{start}, en est à {f.duree} de thèse. {situation}\n"
        f"Action requise : {action}."
    )
    return _director_subject(f, name), body, action


def _recipients(e: Enrollment) -> list[tuple[Person, str]]:
    pairs: list[tuple[Person | None, str]] = [
        (e.doctorant, "DOCTORANT"),
        (e.directeur, "DIRECTEUR_THESE"),
    ]
    return [(p, role) for p, role in pairs if p is not None]


#: Values notification-service accepts (``TYPES``, ``PRIORITES``; tested), so not re-checked.
_TYPE = TypeNotification.RAPPEL_ECHEANCE.value
_ROLES = {role: orjson.dumps(role) for role in ("DOCTORANT", "DIRECTEUR_THESE")}


def payloads(decision: AlertDecision, rule: AlertRule) -> list[bytes]:
    """The RAPPEL_ECHEANCE events for the doctorant and the director (those reachable), as
    the outbox publishes them: the JSON of :func:`~tranche.doctoral.notifications.notification`
    for the same texts, byte for byte.

    Written here rather than through ``notification(…).to_json()``: an alert run builds
    thousands, and that path checked the type and priority, copied the ``donnees`` twice
    and serialised them once per recipient. Here the type and priorities are constants
    (a test holds them to notification-service's lists), every value is already a JSON
    scalar (dates as ISO strings), the shared ``donnees`` are serialised once per
    decision, and each recipient adds their two keys. The address is checked as
    notification-service checks it; a subject is never blank.
    """
    e = decision.enrollment
    f = _facts(decision, rule)
    doctorant_nom = e.doctorant.full_name if e.doctorant else None
    shared = orjson.dumps(
        {
            "alerteType": decision.alert.value,
            "inscriptionId": e.inscription_id,
            "doctorantId": e.doctorant_id,
            "doctorantNom": doctorant_nom,
            "directeurNom": e.directeur.full_name if e.directeur else None,
            "datePremiereInscription": e.date_premiere_inscription.isoformat(),
            "dureeActuelle": f.duree,
            "moisEcoules": decision.months,
            "tempsRestant": f"{f.remaining} mois" if f.remaining else None,
            "seuil": _SEUIL[decision.alert],
            "dateSeuil": f.threshold.isoformat(),
            "dateLimite": rule.limit_date(e.date_premiere_inscription).isoformat(),
            "derogation": e.derogation,
            "reinscriptionBloquee": decision.alert is AlertType.DEPASSE_6_ANS,
        }
    )[:-1]  # without its closing brace: each recipient's two keys follow
    priority = priority_of(decision.alert)
    start, situation = _day(f.start), _situation(f)
    out = []
    for person, role in _recipients(e):
        if not EMAIL_PATTERN.match(person.email or ""):
            # One malformed address in userdb must not hold up everyone else's alerts.
            log.warning(
                "alert_recipient_unusable",
                inscription_id=e.inscription_id,
                user_id=person.id,
                role=role,
                reason=f"destinataire {person.email!r} is not an email address",
            )
            continue
        subject, body, action = _texts(f, e, role, person, start, situation)
        donnees = b"%s,%s:%s,%s:%s}" % (
            shared,
            b'"actionRequise"',
            orjson.dumps(action),
            b'"destinataireRole"',
            _ROLES[role],
        )
        event = {
            "type": _TYPE,
            "destinataire": person.email,
            "sujet": subject.strip()[:255],
            "messageTexte": body,
            "priorite": priority,
            "donnees": orjson.Fragment(donnees),
        }
        out.append(orjson.dumps(event))
    return out


def unreachable_reason(e: Enrollment) -> str:
    """Why neither the doctorant nor the director can be told (French, for the admins)."""
    missing = [
        label
        for person, label in ((e.doctorant, "doctorant"), (e.directeur, "directeur de thèse"))
        if person is None
    ]
    refused = [
        f"{label} (utilisateur {person.id})"
        for person, label in ((e.doctorant, "doctorant"), (e.directeur, "directeur de thèse"))
        if person is not None and not EMAIL_PATTERN.match(person.email or "")
    ]
    parts = []
    if missing:
        parts.append(f"absent(s) de userdb : {', '.join(missing)}")
    if refused:
        parts.append(f"adresse e-mail refusée par notification-service : {', '.join(refused)}")
    return " ; ".join(parts) or "aucun destinataire joignable"
