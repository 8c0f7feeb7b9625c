"""user-service's ``userdb`` as Hibernate creates it on MariaDB (reference §2)."""

from __future__ import annotations

import sqlalchemy as sa

from tranche.doctoral.sources import Bit, Dt6, Id, enum

__all__ = [
    "ACCOUNT_STATUSES",
    "AUDIT_ACTIONS",
    "ROLE_NAMES",
    "metadata",
    "password_reset_tokens",
    "refresh_token",
    "roles",
    "user_audits",
    "user_profiles",
    "user_roles",
    "users",
]

ROLE_NAMES = ("ROLE_DOCTORANT", "ROLE_DIRECTEUR", "ROLE_ADMIN", "ROLE_DOCTORANT_ACTIF")
ACCOUNT_STATUSES = ("ACTIVE", "DISABLED", "LOCKED")
AUDIT_ACTIONS = (
    "LOGIN",
    "LOGIN_FAILED",
    "LOGOUT",
    "PASSWORD_CHANGE",
    "ROLE_ASSIGNED",
    "ROLE_REMOVED",
    "PROFILE_MODIFIED",
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "ACCOUNT_LOCKED",
    "ACCOUNT_UNLOCKED",
)

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("last_name", sa.String(255), nullable=False),
    sa.Column("first_name", sa.String(255), nullable=False),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password", sa.String(255), nullable=False),
    sa.Column("phone_number", sa.String(255), nullable=False),
    sa.Column("adresse", sa.String(255), nullable=False),
    sa.Column("ville", sa.String(255), nullable=False),
    sa.Column("pays", sa.String(255), nullable=False),
    sa.Column("enabled", Bit(), nullable=False),
    sa.Column("created_at", Dt6, nullable=False),
    sa.Column("updated_at", Dt6),
    sa.Column("account_status", enum(*ACCOUNT_STATUSES), nullable=False),
    sa.Column("failed_login_attempts", sa.Integer),
    sa.Column("lockout_expiration", Dt6),
    sa.Column("profile_complete", Bit(), nullable=False),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", enum(*ROLE_NAMES), nullable=False, unique=True),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("role_id", sa.BigInteger, sa.ForeignKey("roles.id"), primary_key=True),
)

user_profiles = sa.Table(
    "user_profiles",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False, unique=True),
    sa.Column("date_naissance", sa.Date),
    sa.Column("lieu_naissance", sa.String(255)),
    sa.Column("nationalite", sa.String(255)),
    sa.Column("cin", sa.String(255), unique=True),
    sa.Column("photo_url", sa.String(255)),
    sa.Column("created_at", Dt6, nullable=False),
    sa.Column("updated_at", Dt6),
)

#: Opaque UUID tokens, one row per user (each login replaces it); ``expiry_date`` is a UTC Instant.
refresh_token = sa.Table(
    "refresh_token",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), unique=True),
    sa.Column("token", sa.String(255), nullable=False, unique=True),
    sa.Column("expiry_date", Dt6, nullable=False),
)

password_reset_tokens = sa.Table(
    "password_reset_tokens",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("token", sa.String(255), nullable=False, unique=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("expiration_date", Dt6, nullable=False),
    sa.Column("used", Bit(), nullable=False),
)

user_audits = sa.Table(
    "user_audits",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("action", enum(*AUDIT_ACTIONS), nullable=False, index=True),
    sa.Column("timestamp", Dt6, nullable=False, index=True),
    sa.Column("ip_address", sa.String(255)),
    sa.Column("details", sa.Text),
)
