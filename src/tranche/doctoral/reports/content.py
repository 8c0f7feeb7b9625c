"""What the report says, independent of how it is drawn: KPIs, their change, alerts, French labels.

Shared by the PDF (:mod:`tranche.doctoral.reports.pdf`) and the mail's text, so
both say the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LABELS",
    "Kpi",
    "Thresholds",
    "alerts",
    "change_text",
    "is_empty",
    "kpis",
    "label",
    "number",
]

Stats = Mapping[str, Mapping[str, Any]]

#: The owners' enum constants in French, as the school's staff reads them.
LABELS = {
    "BROUILLON": "Brouillon",
    "SOUMIS": "Soumise",
    "EN_ATTENTE_DIRECTEUR": "En attente du directeur",
    "APPROUVE_DIRECTEUR": "Approuvée par le directeur",
    "EN_ATTENTE_ADMIN": "En attente de l'administration",
    "VALIDE": "Validée",
    "REJETE": "Rejetée",
    "TRES_HONORABLE_AVEC_FELICITATIONS": "Très honorable avec félicitations",
    "TRES_HONORABLE": "Très honorable",
    "HONORABLE": "Honorable",
    "PASSABLE": "Passable",
    "PENDING": "En attente",
    "SENT": "Envoyée",
    "FAILED": "En échec",
    "RETRYING": "Nouvel essai",
    "ROLE_DOCTORANT": "Doctorant",
    "ROLE_DIRECTEUR": "Directeur de thèse",
    "ROLE_ADMIN": "Administrateur",
    "ROLE_DOCTORANT_ACTIF": "Doctorant actif",
}


def label(key: str) -> str:
    """French label of an enum constant (unknown ones as they are, e.g. a discipline)."""
    return LABELS.get(key, key)


def number(value: Any, unit: str = "") -> str:
    """French number: ``1 234``, ``28,57 %``; ``—`` for no value (a median of nothing)."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{int(value):,}"
    text = text.replace(",", "\u202f").replace(".", ",")
    return f"{text}\u202f{unit}" if unit else text


@dataclass(frozen=True)
class Kpi:
    title: str
    current: float | None
    previous: float | None
    unit: str = ""
    #: True when a rise is bad news (failure rate, doctorants past 6 years).
    rise_is_bad: bool = False

    @property
    def change(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return round(self.current - self.previous, 2)


_KPIS = (
    ("Premières inscriptions", "enrollments", "firstEnrollments", "", False),
    ("Réinscriptions", "enrollments", "reEnrollments", "", False),
    ("Inscriptions validées", "enrollments", "validated", "", False),
    ("Inscriptions rejetées", "enrollments", "rejected", "", True),
    ("Soutenances tenues", "defenses", "held", "", False),
    ("Notifications envoyées", "notifications", "sent", "", False),
    ("Taux d'échec des notifications", "notifications", "failureRatePercent", "%", True),
    ("Nouveaux comptes", "users", "newAccounts", "", False),
    ("Doctorants au-delà de 6 ans", "durations", "over6Years", "", True),
)


def kpis(stats: Stats) -> list[Kpi]:
    out = []
    for title, category, key, unit, bad in _KPIS:
        cat = stats.get(category, {})
        out.append(
            Kpi(
                title,
                cat.get("current", {}).get(key),
                cat.get("previous", {}).get(key),
                unit,
                bad,
            )
        )
    return out


def change_text(kpi: Kpi) -> str:
    """« +2 (+50 %) », « -1 (-25 %) » (a minus sign), « +3 (nouveau) », « — » (no figure)."""
    delta = kpi.change
    if delta is None:
        return "—"
    if delta == 0:
        return "= mois précédent"
    sign = "+" if delta > 0 else "\u2212"
    text = f"{sign}{number(abs(delta), kpi.unit)}"
    if kpi.unit == "%":
        return text.replace("%", "pts")
    previous = kpi.previous or 0
    if previous == 0:
        return f"{text} (nouveau)"
    return f"{text} ({sign}{number(round(abs(delta) * 100 / previous, 1), '%')})"


@dataclass(frozen=True)
class Thresholds:
    failure_rate_percent: float
    over_6_years: int
    validation_days: float


def alerts(stats: Stats, thresholds: Thresholds) -> list[str]:
    """One French sentence per threshold the month crosses (empty: nothing to flag)."""
    out = []
    notes = stats.get("notifications", {}).get("current", {})
    rate = float(notes.get("failureRatePercent") or 0.0)
    if rate > thresholds.failure_rate_percent:
        out.append(
            f"Taux d'échec des notifications de {number(rate, '%')} "
            f"(seuil : {number(thresholds.failure_rate_percent, '%')}) : "
            f"{number(notes.get('failed', 0))} notification(s) en échec."
        )
    over = int(stats.get("durations", {}).get("current", {}).get("over6Years") or 0)
    if over > thresholds.over_6_years:
        out.append(
            f"{number(over)} doctorant(s) au-delà de 6 ans de thèse "
            f"(seuil : {number(thresholds.over_6_years)}) : réinscription bloquée, "
            "soutenance ou dérogation à organiser."
        )
    delay = stats.get("enrollments", {}).get("current", {}).get("medianDaysToValidation")
    if delay is not None and float(delay) > thresholds.validation_days:
        out.append(
            f"Délai médian de validation des inscriptions de {number(delay, 'jours')} "
            f"(seuil : {number(thresholds.validation_days, 'jours')})."
        )
    return out


def is_empty(stats: Stats) -> bool:
    """No activity at all in the month (every flow figure is zero)."""
    current = {c: v.get("current", {}) for c, v in stats.items()}
    flows = [
        current.get("enrollments", {}).get("created", 0),
        current.get("enrollments", {}).get("validated", 0),
        current.get("enrollments", {}).get("rejected", 0),
        current.get("defenses", {}).get("requested", 0),
        current.get("defenses", {}).get("authorised", 0),
        current.get("defenses", {}).get("held", 0),
        current.get("notifications", {}).get("total", 0),
        current.get("users", {}).get("newAccounts", 0),
        current.get("users", {}).get("lockedInMonth", 0),
    ]
    return not any(flows)
