"""defensedb and notification_db rows: defense requests, defenses, past notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa

from tranche.doctoral.durations import add_months
from tranche.doctoral.seed.base import SeedBase, insert_rows, next_id
from tranche.doctoral.tables import defensedb as D
from tranche.doctoral.tables import notification_db as N
from tranche.doctoral.tables import userdb as U

__all__ = ["ActivitySeeding"]


class ActivitySeeding(SeedBase):
    async def defenses(
        self, enrolled: Sequence[tuple[int, int, int]], directors: Sequence[int]
    ) -> None:
        """Defense requests for doctorants past three years; completed defenses for some."""
        req_id = await next_id(self.defensedb, D.defense_requests)
        pre_id = await next_id(self.defensedb, D.prerequisites)
        prereqs, requests, defenses = [], [], []
        for doc, _director, months in enrolled:
            if months < 36 or self.rng.random() < 0.4:
                continue
            status = self.rng.choice(D.DEFENSE_REQUEST_STATUSES[1:])
            submitted = self.now - timedelta(days=self.rng.randint(10, 400))
            prereqs.append(
                {
                    "id": pre_id,
                    "doctorant_id": doc,
                    "doctorate_start_date": add_months(self.now.date(), -months),
                    "is_valid": status != "REJECTED",
                }
            )
            requests.append(
                {
                    "id": req_id,
                    "doctorant_id": doc,
                    "submission_date": submitted,
                    "status": status,
                    "rejection_reason": "Prérequis incomplets" if status == "REJECTED" else None,
                    "prerequisites_id": pre_id,
                }
            )
            if status in ("SCHEDULED", "COMPLETED"):
                done = status == "COMPLETED"
                defenses.append(
                    {
                        "defense_date": submitted + timedelta(days=60),
                        "location": f"Université de {self.fake.city()}",
                        "room": f"Amphi {self.rng.randint(1, 9)}",
                        "status": "COMPLETED" if done else "SCHEDULED",
                        "proces_verbal_url": (
                            f"http://localhost:8083/api/defense-service/defenses/{req_id}/proces-verbal"
                            if done
                            else None
                        ),
                        "mention": self.rng.choice(D.MENTIONS) if done else None,
                        "publication_recommended": done and self.rng.random() < 0.5,
                        "jury_comments": None,
                        "deliberation_date": submitted + timedelta(days=60) if done else None,
                        "defense_request_id": req_id,
                    }
                )
            pre_id += 1
            req_id += 1
        await insert_rows(self.defensedb, D.prerequisites, prereqs)
        await insert_rows(self.defensedb, D.defense_requests, requests)
        await insert_rows(self.defensedb, D.defenses, defenses)
        self.report.add("defense_requests", len(requests))
        self.report.add("defenses", len(defenses))

    async def notifications(self, user_ids: Sequence[int], count: int) -> None:
        """Past notifications, mostly SENT, some FAILED or PENDING."""
        async with self.userdb.sessions() as s:
            emails = list(
                (
                    await s.execute(sa.select(U.users.c.email).where(U.users.c.id.in_(user_ids)))
                ).scalars()
            )
        rows = []
        for _ in range(count):
            created = self.now - timedelta(minutes=self.rng.randint(5, 60 * 24 * 120))
            statut = self.rng.choices(N.STATUTS, weights=(5, 85, 7, 3))[0]
            rows.append(
                {
                    "type": self.rng.choice(N.TYPES),
                    "destinataire": self.rng.choice(emails),
                    "sujet": self.fake.sentence(nb_words=6),
                    "message_texte": self.fake.paragraph(),
                    "statut": statut,
                    "priorite": self.rng.choices(N.PRIORITES, weights=(80, 15, 5))[0],
                    "donnees": {"source": "seed-demo"},
                    "nombre_tentatives": 1 if statut == "SENT" else self.rng.randint(0, 3),
                    "erreur_message": "Connexion SMTP refusée" if statut == "FAILED" else None,
                    "lu": statut == "SENT" and self.rng.random() < 0.6,
                    "date_creation": created,
                    "date_envoi": created + timedelta(seconds=5) if statut == "SENT" else None,
                    "date_modification": created,
                }
            )
        await insert_rows(self.notification_db, N.notifications, rows)
        self.report.add("notifications", len(rows))
