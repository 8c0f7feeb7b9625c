"""Settings of the doctoral batch service (``DOCTORAL_*``; the JWT secret is ``JWT_SECRET``).

``JWT_SECRET`` keeps the name the portal's gateway and user-service read, so one
secret serves the whole portal. It has no default: when every database URL is
unset (embedded mode: ``tranche serve doctoral`` on a laptop, the demo) the app
generates one, stores it in the data directory and says so loudly; anywhere
else an unset secret stops the service at start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from tranche.batch import BatchSettings
from tranche.core.outbox import OutboxSettingsMixin

__all__ = ["DATABASES", "DoctoralSettings"]

#: Setting field → database name (as its owner calls it).
DATABASES = {
    "batch_db_url": "batchdb",
    "user_db_url": "userdb",
    "inscription_db_url": "inscription_db",
    "defense_db_url": "defensedb",
    "notification_db_url": "notification_db",
}

_CRON_FIELDS = (6, 7)


class DoctoralSettings(OutboxSettingsMixin):
    model_config = SettingsConfigDict(env_prefix="DOCTORAL_", extra="ignore")

    port: int = Field(default=8085, ge=1, le=65535, description="HTTP port (the original's).")

    batch_db_url: str | None = Field(
        default=None, description="batchdb (ours, migrated). Unset: batchdb.db in DATA_DIR."
    )
    user_db_url: str | None = Field(
        default=None, description="user-service's userdb. Unset: userdb.db in DATA_DIR."
    )
    inscription_db_url: str | None = Field(
        default=None, description="inscription-service's inscription_db. Unset: SQLite file."
    )
    defense_db_url: str | None = Field(
        default=None, description="defense-service's defensedb. Unset: SQLite file."
    )
    notification_db_url: str | None = Field(
        default=None, description="notification-service's notification_db. Unset: SQLite file."
    )

    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("JWT_SECRET", "jwt_secret"),
        description="HS256 key shared with user-service (its raw UTF-8 bytes, at least 32).",
    )
    jwt_issuer: str = Field(default="user-service", description="Required `iss` claim.")
    jwt_leeway_s: int = Field(default=0, ge=0, le=300, description="Clock skew allowed on exp.")

    trigger_rate_limit: str = Field(
        default="5/minute",
        description="Manual triggers allowed per admin (limits syntax: '5/minute', '10 per hour').",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or redis://host:port.",
    )

    batch: BatchSettings = Field(
        default_factory=BatchSettings,
        description="The batch engine: time zone of the crons, scheduler, locks (BATCH_*).",
    )
    token_cleanup_cron: str = Field(default="0 0 2 * * ?", description="tokenCleanupJob (Quartz).")
    duree_alert_cron: str = Field(
        default="0 0 8 ? * MON", description="dureeDoctoratAlertJob (Quartz)."
    )
    data_consistency_cron: str = Field(
        default="0 0 23 * * ?", description="dataConsistencyJob (Quartz)."
    )
    token_cleanup_chunk_size: int = Field(default=100, ge=1, le=10_000)
    duree_alert_chunk_size: int = Field(default=50, ge=1, le=10_000)

    alert_3_years_from_months: int = Field(
        default=33, ge=1, description="3-year alert from this many whole months (inclusive)."
    )
    alert_3_years_until_months: int = Field(
        default=36, ge=1, description="3-year alert window end (exclusive)."
    )
    alert_6_years_from_months: int = Field(
        default=69, ge=1, description="6-year alert from this many whole months (inclusive)."
    )
    max_duration_months: int = Field(
        default=72, ge=1, description="At or past this: exceeded alert and re-enrollment blocked."
    )

    consistency_chunk_size: int = Field(
        default=500, ge=1, le=10_000, description="dataConsistencyJob: rows per committed slice."
    )
    uploads_dir: Path | None = Field(
        default=None,
        description="inscription-service's upload directory (its app.upload.dir), as mounted "
        "here. Unset: uploads in DATA_DIR.",
    )
    reports_dir: Path = Field(
        default=Path("reports"), description="Where the generated PDF reports are written."
    )
    orphan_grace_hours: float = Field(
        default=24.0, ge=0, description="Files younger than this are never taken as orphans."
    )
    notification_retry_after_hours: float = Field(
        default=24.0, ge=0, description="PENDING notifications older than this are re-sent."
    )
    notification_max_attempts: int = Field(
        default=3, ge=1, le=100, description="After this many attempts a notification is FAILED."
    )
    technical_admin_email: str | None = Field(
        default=None,
        description="Receives anomaly reports and failed-notification notices; unset: the admins.",
    )

    notifications_topic: str = Field(
        default="notifications", description="Topic notification-service consumes."
    )
    admin_emails: list[str] = Field(
        default_factory=list,
        description="Extra recipients of failure mails (JSON list), besides ROLE_ADMIN users.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server; unset: no mail.")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(default=False, description="Upgrade with STARTTLS.")
    smtp_tls: bool = Field(default=False, description="Implicit TLS (port 465).")
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    mail_from: str = Field(default="batch-service@localhost", description="From address.")

    eureka_url: str | None = Field(
        default=None, description="Eureka server (e.g. http://eureka:eureka123@host:8761/eureka/)."
    )
    eureka_app_name: str = Field(default="BATCH-SERVICE", description="Name registered in Eureka.")
    eureka_instance_host: str | None = Field(
        default=None, description="Host announced to Eureka (default: HOST)."
    )

    @field_validator("trigger_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '5/minute': {exc}") from None
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].removeprefix("async+")
        if scheme not in ("memory", "redis", "rediss"):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return value

    @field_validator("token_cleanup_cron", "duree_alert_cron", "data_consistency_cron")
    @classmethod
    def _quartz_shape(cls, value: str) -> str:
        if len(value.split()) not in _CRON_FIELDS:
            raise ValueError("a Quartz cron has 6 or 7 fields ('0 0 2 * * ?')")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        # user-service signs with Keys.hmacShaKeyFor, which refuses keys under 256 bits.
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes (user-service refuses shorter HS256 keys)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not (
            self.alert_3_years_from_months
            < self.alert_3_years_until_months
            <= self.alert_6_years_from_months
            < self.max_duration_months
        ):
            raise ValueError(
                "alert thresholds must satisfy ALERT_3_YEARS_FROM_MONTHS < "
                "ALERT_3_YEARS_UNTIL_MONTHS <= ALERT_6_YEARS_FROM_MONTHS < MAX_DURATION_MONTHS"
            )
        if self.jwt_secret is None and not self.embedded:
            raise ValueError(
                "JWT_SECRET is required when databases are configured "
                "(the secret user-service signs tokens with)"
            )
        return self

    @property
    def embedded(self) -> bool:
        """Every database is an embedded SQLite file (a laptop or the demo, never production)."""
        return all(getattr(self, f) is None for f in DATABASES)

    def database_urls(self) -> dict[str, str]:
        """Database name → URL, SQLite files in ``data_dir`` for those unset."""
        return {name: getattr(self, f) or self.sqlite_url(name) for f, name in DATABASES.items()}

    @property
    def uploads_root(self) -> Path:
        """The uploads directory the orphan check scans (``DATA_DIR/uploads`` when unset)."""
        return self.uploads_dir if self.uploads_dir is not None else self.data_dir / "uploads"

    @property
    def jwt_secret_file(self) -> Path:
        return self.data_dir / "jwt-secret"
