"""inscription_db rows: campaigns, enrollments and re-enrollments, theses, derogations.

First enrollment dates are spread so every alert window has rows: quotas fill the
3-year, 6-year and exceeded windows first, then a uniform spread over 0-80 months.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from tranche.doctoral.durations import add_months
from tranche.doctoral.seed.base import SeedBase, insert_rows, next_id
from tranche.doctoral.tables import inscription_db as I

__all__ = ["ThesisSeeding"]

_BATCH = 2000
_TOPICS = (
    "l'apprentissage profond",
    "la cryptographie post-quantique",
    "la gestion de l'eau en zone aride",
    "les matériaux composites biosourcés",
    "l'optimisation des réseaux électriques intelligents",
    "la traduction automatique de l'arabe dialectal",
    "la détection précoce des maladies foliaires",
    "les systèmes multi-agents",
)
_PURPOSES = (
    "appliqué(e) à la santé publique",
    "pour l'industrie automobile",
    "dans les villes intelligentes",
    "pour l'agriculture de précision",
    "en contexte à faibles ressources",
)
_LABS = ("LIPIM", "LAMSAD", "LISAC", "LRIT", "LIMSAD", "LaGeS")
_MOTIF = "Dérogation accordée par le PED"
_DISCIPLINES = ("Informatique", "Génie électrique", "Mathématiques appliquées", "Génie civil")


class ThesisSeeding(SeedBase):
    def _months_for(self, index: int) -> int:
        # Quotas first, so every window has rows even at scale 1, then a uniform spread.
        bands = ((33, 36), (33, 36), (69, 72), (72, 80), (0, 33), (36, 69))
        low, high = bands[index % len(bands)] if index < 4 * len(bands) else (0, 80)
        return self.rng.randrange(low, high)

    async def _campaign_ids(self, years: range) -> dict[tuple[int, str], int]:
        rows, ids = [], {}
        new_id = await next_id(self.inscription_db, I.campagnes)
        for year in years:
            for kind in ("INSCRIPTION", "REINSCRIPTION"):
                ids[(year, kind)] = new_id
                rows.append(
                    {
                        "id": new_id,
                        "libelle": f"Campagne de {kind.lower()} {year}-{year + 1}",
                        "type": kind,
                        "date_debut": date(year, 9, 1),
                        "date_fin": date(year, 10, 31),
                        "active": year == years[-1],
                        "annee_universitaire": year,
                    }
                )
                new_id += 1
        await insert_rows(self.inscription_db, I.campagnes, rows)
        return ids

    async def enrollments(
        self, doctorants: Sequence[int], directors: Sequence[int]
    ) -> list[tuple[int, int, int]]:
        """First enrollment and yearly re-enrollments per doctorant.

        Returns ``(doctorant_id, director_id, months)`` for those with a validated enrollment.
        """
        today = self.now.date()
        campaigns = await self._campaign_ids(range(today.year - 8, today.year + 1))
        new_id = await next_id(self.inscription_db, I.inscriptions)
        rows: list[dict[str, Any]] = []
        theses: list[dict[str, Any]] = []
        derogations: list[dict[str, Any]] = []
        enrolled: list[tuple[int, int, int]] = []
        for index, doc in enumerate(doctorants):
            director = directors[index % len(directors)]
            months = self._months_for(index)
            first = datetime.combine(add_months(today, -months), datetime.min.time())
            first += timedelta(hours=self.rng.randint(8, 17), minutes=self.rng.randint(0, 59))
            pending = index % 11 == 10
            derogation = months >= 33 and self.rng.random() < 0.3
            subject = f"Contribution à {self.rng.choice(_TOPICS)} {self.rng.choice(_PURPOSES)}"
            # The owner refuses re-enrollment at six years, so the last row is at most year 5.
            last_year = min(months // 12, 5)
            for year in range(last_year + 1):
                created = first + timedelta(days=365 * year)
                kind = "PREMIERE_INSCRIPTION" if year == 0 else "REINSCRIPTION"
                statut = "VALIDE"
                if pending and year == last_year:
                    statut = self.rng.choice(
                        ("BROUILLON", "EN_ATTENTE_DIRECTEUR", "EN_ATTENTE_ADMIN")
                    )
                validated = statut == "VALIDE"
                rows.append(
                    {
                        "id": new_id,
                        "doctorant_id": doc,
                        "directeur_these_id": director,
                        "campagne_id": campaigns.get(
                            (created.year, "INSCRIPTION" if year == 0 else "REINSCRIPTION"),
                            campaigns[(today.year, "REINSCRIPTION")],
                        ),
                        "sujet_these": subject,
                        "type": kind,
                        "annee_inscription": created.year,
                        "statut": statut,
                        "date_creation": created,
                        "date_validation": created + timedelta(days=14) if validated else None,
                        "date_premiere_inscription": first if (validated or year > 0) else None,
                        # APPROUVE_PED marks the first enrollment, where the owner looks for it.
                        "derogation": True if (derogation and year == 0) else None,
                        "motif_derogation": _MOTIF if (derogation and year == 0) else None,
                        "bloque_re_inscription": False,
                    }
                )
                if year == 0:
                    theses.append(self._thesis(new_id, subject, first))
                    if derogation:
                        derogations.append(self._derogation(new_id, first, months))
                new_id += 1
            self.report.add("inscriptions doctorants")
            if pending and last_year == 0:
                self.report.add("doctorants not yet validated")
                continue
            enrolled.append((doc, director, months))
            self.report.add(self._band(months, derogation))
        await insert_rows(self.inscription_db, I.inscriptions, rows)
        await insert_rows(self.inscription_db, I.infos_these, theses)
        await insert_rows(self.inscription_db, I.derogation_requests, derogations)
        self.report.add("inscriptions rows", len(rows))
        return enrolled

    def _thesis(self, inscription_id: int, subject: str, first: datetime) -> dict[str, Any]:
        return {
            "inscription_id": inscription_id,
            "titre_these": subject,
            "discipline": self.rng.choice(_DISCIPLINES),
            "laboratoire": self.rng.choice(_LABS),
            "etablissement_accueil": f"Université de {self.fake.city()}",
            "cotutelle": self.rng.random() < 0.1,
            "universite_partenaire": None,
            "pays_partenaire": None,
            "date_debut_prevue": first.date(),
        }

    def _derogation(self, inscription_id: int, first: datetime, months: int) -> dict[str, Any]:
        asked = first + timedelta(days=30 * min(months, 33) - 20)
        return {
            "inscription_id": inscription_id,
            "motif": "Prolongation demandée : retard d'expérimentation lié à l'équipement",
            "date_demande": asked,
            "statut": "APPROUVE_PED",
            "validateur_id": 0,
            "commentaire_validation": _MOTIF,
            "date_validation": asked + timedelta(days=20),
            "documents_justificatifs": None,
        }

    @staticmethod
    def _band(months: int, derogation: bool) -> str:
        if months >= 72:
            return "doctorants ≥ 72 months"
        if months >= 69:
            return "doctorants 69-71 months"
        if 33 <= months < 36:
            return "doctorants 33-35 months" + (" (derogation)" if derogation else "")
        return "doctorants outside alert windows"
