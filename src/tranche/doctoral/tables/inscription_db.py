"""inscription-service's ``inscription_db`` as Hibernate creates it on MariaDB (reference §3).

There is no blocked or suspended enrollment status: the owner blocks a
re-enrollment with ``bloque_re_inscription = 1``. ``date_premiere_inscription``
is NULL until a first enrollment is validated, and re-enrollments copy it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tranche.doctoral.sources import Bit, Dt6, Id, enum

__all__ = [
    "ALERTE_TYPES",
    "INSCRIPTION_STATUTS",
    "INSCRIPTION_TYPES",
    "alertes_duree",
    "campagnes",
    "derogation_requests",
    "documents_generes",
    "documents_inscription",
    "infos_doctorant",
    "infos_these",
    "inscriptions",
    "metadata",
    "validations_inscription",
]

INSCRIPTION_STATUTS = (
    "BROUILLON",
    "SOUMIS",
    "EN_ATTENTE_DIRECTEUR",
    "APPROUVE_DIRECTEUR",
    "EN_ATTENTE_ADMIN",
    "VALIDE",
    "REJETE",
)
INSCRIPTION_TYPES = ("PREMIERE_INSCRIPTION", "REINSCRIPTION")
ALERTE_TYPES = ("APPROCHE_3_ANS", "APPROCHE_6_ANS", "DEPASSE_6_ANS")

metadata = sa.MetaData()


def _owned_by_inscription() -> sa.Column[int]:
    return sa.Column(
        "inscription_id", sa.BigInteger, sa.ForeignKey("inscriptions.id"), nullable=False
    )


campagnes = sa.Table(
    "campagnes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("libelle", sa.String(255), nullable=False),
    sa.Column("type", enum("INSCRIPTION", "REINSCRIPTION"), nullable=False),
    sa.Column("date_debut", sa.Date, nullable=False),
    sa.Column("date_fin", sa.Date, nullable=False),
    sa.Column("active", Bit(), nullable=False),
    sa.Column("annee_universitaire", sa.Integer),
)

inscriptions = sa.Table(
    "inscriptions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("doctorant_id", sa.BigInteger, nullable=False),
    sa.Column("directeur_these_id", sa.BigInteger, nullable=False),
    sa.Column("campagne_id", sa.BigInteger, sa.ForeignKey("campagnes.id"), nullable=False),
    sa.Column("sujet_these", sa.String(500), nullable=False),
    sa.Column("type", enum(*INSCRIPTION_TYPES), nullable=False),
    sa.Column("annee_inscription", sa.Integer, nullable=False),
    sa.Column("statut", enum(*INSCRIPTION_STATUTS), nullable=False),
    sa.Column("date_creation", Dt6, nullable=False),
    sa.Column("date_validation", Dt6),
    sa.Column("date_premiere_inscription", Dt6),
    sa.Column("commentaire_directeur", sa.String(1000)),
    sa.Column("commentaire_admin", sa.String(1000)),
    sa.Column("derogation", Bit()),
    sa.Column("motif_derogation", sa.String(500)),
    sa.Column("bloque_re_inscription", Bit(), nullable=False),
)

infos_doctorant = sa.Table(
    "infos_doctorant",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column("cin", sa.String(20), nullable=False),
    sa.Column("cne", sa.String(20)),
    sa.Column("telephone", sa.String(20), nullable=False),
    sa.Column("adresse", sa.String(255), nullable=False),
    sa.Column("ville", sa.String(255), nullable=False),
    sa.Column("pays", sa.String(255), nullable=False),
    sa.Column("date_naissance", sa.Date, nullable=False),
    sa.Column("lieu_naissance", sa.String(255), nullable=False),
    sa.Column("nationalite", sa.String(255), nullable=False),
)

infos_these = sa.Table(
    "infos_these",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column("titre_these", sa.String(500), nullable=False),
    sa.Column("discipline", sa.String(255), nullable=False),
    sa.Column("laboratoire", sa.String(255), nullable=False),
    sa.Column("etablissement_accueil", sa.String(255), nullable=False),
    sa.Column("cotutelle", Bit()),
    sa.Column("universite_partenaire", sa.String(255)),
    sa.Column("pays_partenaire", sa.String(255)),
    sa.Column("date_debut_prevue", sa.Date, nullable=False),
)

documents_inscription = sa.Table(
    "documents_inscription",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column(
        "type_document",
        enum(
            "DIPLOME_MASTER",
            "CV",
            "LETTRE_MOTIVATION",
            "RELEVE_NOTES",
            "PROJET_THESE",
            "AUTORISATION_DIRECTEUR",
            "AUTRE",
        ),
        nullable=False,
    ),
    sa.Column("nom_fichier", sa.String(255), nullable=False),
    sa.Column("chemin_fichier", sa.String(255), nullable=False),
    sa.Column("taille_fichier", sa.BigInteger),
    sa.Column("mime_type", sa.String(255)),
    sa.Column("date_upload", Dt6, nullable=False),
    sa.Column("valide", Bit()),
    sa.Column("commentaire", sa.String(500)),
)

documents_generes = sa.Table(
    "documents_generes",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column(
        "type",
        enum("ATTESTATION_INSCRIPTION", "PROCES_VERBAL", "AUTORISATION_SOUTENANCE"),
        nullable=False,
    ),
    sa.Column("chemin_fichier", sa.String(500), nullable=False),
    sa.Column("date_generation", Dt6, nullable=False),
    sa.Column("taille_fichier", sa.BigInteger, nullable=False),
)

validations_inscription = sa.Table(
    "validations_inscription",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column("validateur_id", sa.BigInteger, nullable=False),
    sa.Column("type_validateur", enum("DIRECTEUR_THESE", "ADMINISTRATION"), nullable=False),
    sa.Column("statut", enum("EN_ATTENTE", "APPROUVE", "REJETE"), nullable=False),
    sa.Column("commentaire", sa.String(1000)),
    sa.Column("date_validation", Dt6),
    sa.Column("date_creation", Dt6, nullable=False),
)

derogation_requests = sa.Table(
    "derogation_requests",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column("motif", sa.String(2000), nullable=False),
    sa.Column("date_demande", Dt6, nullable=False),
    sa.Column(
        "statut",
        enum("EN_ATTENTE", "APPROUVE_DIRECTEUR", "EN_ATTENTE_PED", "APPROUVE_PED", "REJETE"),
        nullable=False,
    ),
    sa.Column("validateur_id", sa.BigInteger),
    sa.Column("commentaire_validation", sa.String(1000)),
    sa.Column("date_validation", Dt6),
    sa.Column(
        "documents_justificatifs",
        sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
    ),
)

alertes_duree = sa.Table(
    "alertes_duree",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    _owned_by_inscription(),
    sa.Column("type", enum(*ALERTE_TYPES), nullable=False),
    sa.Column("date_alerte", Dt6, nullable=False),
    sa.Column("traite", Bit(), nullable=False),
    sa.Column("action", sa.String(500)),
)
