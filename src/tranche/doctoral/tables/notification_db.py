"""notification-service's ``notification_db`` as Hibernate creates it on MariaDB (reference §5).

``TYPES``/``PRIORITES`` are also the vocabulary of the events it consumes on
topic ``notifications``: a message with any other ``type`` is dropped.
"""

from __future__ import annotations

import sqlalchemy as sa

from tranche.doctoral.sources import Bit, Dt6, Id, enum

__all__ = [
    "PRIORITES",
    "STATUTS",
    "TYPES",
    "metadata",
    "notification_dlq",
    "notifications",
]

TYPES = (
    "INSCRIPTION_SOUMISE_DIRECTEUR",
    "INSCRIPTION_VALIDEE_DIRECTEUR_DOCTORANT",
    "INSCRIPTION_VALIDEE_DIRECTEUR_ADMIN",
    "INSCRIPTION_REJETEE_DIRECTEUR",
    "INSCRIPTION_VALIDEE_ADMIN",
    "INSCRIPTION_REJETEE_ADMIN",
    "DEROGATION_DEMANDEE",
    "DEMANDE_SOUTENANCE_SOUMISE_DIRECTEUR",
    "JURY_PROPOSE_ADMIN",
    "JURY_MEMBRE_INVITE",
    "JURY_MEMBRE_ACCEPTE_DIRECTEUR",
    "JURY_MEMBRE_DECLINE_DIRECTEUR",
    "RAPPORT_SOUMIS_DIRECTEUR",
    "AUTORISATION_SOUTENANCE_DOCTORANT",
    "SOUTENANCE_PLANIFIEE_TOUS",
    "RAPPEL_ECHEANCE",
    "DOCUMENT_MANQUANT",
    "MODIFICATION_CAMPAGNE",
    "ALERTE_SYSTEME",
    "CONFIRMATION_INSCRIPTION",
    "NOTIFICATION_GENERALE",
)
STATUTS = ("PENDING", "SENT", "FAILED", "RETRYING")
PRIORITES = ("NORMALE", "HAUTE", "URGENTE")

metadata = sa.MetaData()

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger),
    sa.Column("type", enum(*TYPES), nullable=False),
    sa.Column("destinataire", sa.String(255), nullable=False),
    sa.Column("sujet", sa.String(255)),
    sa.Column("message_texte", sa.Text),
    sa.Column("message_html", sa.Text),
    sa.Column("statut", enum(*STATUTS), nullable=False),
    sa.Column("priorite", enum(*PRIORITES), nullable=False),
    sa.Column("donnees", sa.JSON),
    sa.Column("nombre_tentatives", sa.Integer),
    sa.Column("erreur_message", sa.Text),
    sa.Column("lu", Bit()),
    sa.Column("date_creation", Dt6, nullable=False),
    sa.Column("date_envoi", Dt6),
    sa.Column("date_modification", Dt6),
)

notification_dlq = sa.Table(
    "notification_dlq",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("notification_id", sa.BigInteger, nullable=False),
    sa.Column("type", sa.String(255), nullable=False),
    sa.Column("destinataire", sa.String(255), nullable=False),
    sa.Column("sujet", sa.String(255)),
    sa.Column("erreur_message", sa.Text),
    sa.Column("donnees", sa.JSON),
    sa.Column("nombre_tentatives", sa.Integer),
    sa.Column("date_ajout_dlq", Dt6, nullable=False),
    sa.Column("date_derniere_tentative", Dt6),
    sa.Column("retraite", Bit()),
    sa.Column("kafka_partition", sa.Integer),
    sa.Column("kafka_offset", sa.BigInteger),
)
