"""defense-service's ``defensedb`` as Hibernate creates it on MariaDB (reference §4).

A defense request carries the doctorant id but no enrollment id: the link to
``inscription_db`` is ``defense_requests.doctorant_id = inscriptions.doctorant_id``,
joined in memory. ``publications`` is left out: nothing here reads it and the
reference does not list its columns.
"""

from __future__ import annotations

import sqlalchemy as sa

from tranche.doctoral.sources import Bit, Dt6, Id, enum

__all__ = [
    "DEFENSE_REQUEST_STATUSES",
    "DEFENSE_STATUSES",
    "MENTIONS",
    "autorisations_soutenance",
    "defense_requests",
    "defenses",
    "documents",
    "juries",
    "jury_members",
    "metadata",
    "prerequisites",
    "rapports",
]

DEFENSE_REQUEST_STATUSES = (
    "DRAFT",
    "SUBMITTED",
    "PREREQUISITES_VALIDATION",
    "DIRECTOR_VALIDATION",
    "JURY_PROPOSED",
    "JURY_VALIDATED",
    "REPORTS_PENDING",
    "REPORTS_RECEIVED",
    "AUTHORIZED",
    "SCHEDULED",
    "COMPLETED",
    "REJECTED",
)
DEFENSE_STATUSES = ("SCHEDULED", "IN_PROGRESS", "COMPLETED", "CANCELLED", "POSTPONED")
MENTIONS = ("TRES_HONORABLE_AVEC_FELICITATIONS", "TRES_HONORABLE", "HONORABLE", "PASSABLE")

metadata = sa.MetaData()


def _request_fk(unique: bool = False) -> sa.Column[int]:
    return sa.Column(
        "defense_request_id", sa.BigInteger, sa.ForeignKey("defense_requests.id"), unique=unique
    )


prerequisites = sa.Table(
    "prerequisites",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("doctorant_id", sa.BigInteger),
    sa.Column("doctorate_start_date", sa.Date),
    sa.Column("is_valid", Bit()),
)

defense_requests = sa.Table(
    "defense_requests",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("doctorant_id", sa.BigInteger),
    sa.Column("submission_date", Dt6),
    sa.Column("status", enum(*DEFENSE_REQUEST_STATUSES)),
    sa.Column("rejection_reason", sa.String(255)),
    sa.Column("prerequisites_id", sa.BigInteger, sa.ForeignKey("prerequisites.id")),
)

juries = sa.Table(
    "juries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("director_id", sa.BigInteger, nullable=False),
    sa.Column(
        "status",
        enum("PROPOSED", "VALIDATED_BY_ADMIN", "REPORTS_PENDING", "REPORTS_RECEIVED"),
    ),
    sa.Column("proposal_date", Dt6),
    sa.Column("validation_date", Dt6),
    _request_fk(unique=True),
)

jury_members = sa.Table(
    "jury_members",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("professor_id", sa.BigInteger, nullable=False),
    sa.Column(
        "role",
        enum("PRESIDENT", "RAPPORTEUR", "EXAMINATEUR", "DIRECTEUR_THESE", "CO_DIRECTEUR"),
        nullable=False,
    ),
    sa.Column("status", enum("INVITED", "ACCEPTED", "DECLINED"), nullable=False),
    sa.Column("jury_id", sa.BigInteger, sa.ForeignKey("juries.id")),
)

rapports = sa.Table(
    "rapports",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("report_url", sa.String(255)),
    sa.Column("favorable", Bit(), nullable=False),
    sa.Column("submission_date", Dt6),
    _request_fk(),
    sa.Column("jury_member_id", sa.BigInteger, sa.ForeignKey("jury_members.id")),
)

autorisations_soutenance = sa.Table(
    "autorisations_soutenance",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _request_fk(unique=True),
    sa.Column("statut", enum("EN_ATTENTE", "AUTORISE", "REFUSE")),
    sa.Column("administrateur_id", sa.BigInteger),
    sa.Column("date_autorisation", Dt6),
    sa.Column("prerequis_valides", Bit()),
    sa.Column("jury_complet", Bit()),
    sa.Column("rapports_favorables", Bit()),
    sa.Column("documents_complets", Bit()),
    sa.Column("commentaire_admin", sa.Text),
    sa.Column("motif_refus", sa.Text),
    sa.Column("date_soutenance", Dt6),
    sa.Column("lieu_soutenance", sa.String(255)),
    sa.Column("salle_soutenance", sa.String(255)),
)

defenses = sa.Table(
    "defenses",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("defense_date", Dt6),
    sa.Column("location", sa.String(255)),
    sa.Column("room", sa.String(255)),
    sa.Column("status", enum(*DEFENSE_STATUSES)),
    sa.Column("proces_verbal_url", sa.String(255)),
    sa.Column("mention", enum(*MENTIONS)),
    sa.Column("publication_recommended", Bit(), nullable=False),
    sa.Column("jury_comments", sa.String(255)),
    sa.Column("deliberation_date", Dt6),
    _request_fk(unique=True),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("file_name", sa.String(255)),
    sa.Column("file_type", sa.String(255)),
    sa.Column("file_url", sa.String(255)),
    sa.Column(
        "type",
        enum(
            "MANUSCRIPT",
            "ANTI_PLAGIARISM_REPORT",
            "PUBLICATIONS_REPORT",
            "TRAINING_CERTIFICATES",
            "AUTHORIZATION_LETTER",
            "JURY_REPORT",
            "PROCES_VERBAL",
        ),
    ),
    sa.Column("upload_date", Dt6),
    _request_fk(),
)
