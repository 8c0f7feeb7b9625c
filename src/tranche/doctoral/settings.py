"""Settings of the doctoral batch service (``DOCTORAL_*``; the JWT secret is ``JWT_SECRET``).

``JWT_SECRET`` keeps the name the portal's gateway and user-service read, so one
secret serves the whole portal. It has no default: when every database URL is
unset (embedded mode: ``tranche serve doctoral`` on a laptop, the demo) the app
generates one, stores it in the data directory and says so loudly; anywhere
else an unset secret stops the service at start.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Self

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tranche.batch import BatchSettings
from tranche.core.outbox import OutboxSettings
from tranche.core.settings import ServiceSettings
from tranche.doctoral.durations import Rule

__all__ = ["DATABASES", "DoctoralOutboxSettings", "DoctoralSettings"]

#: Setting field → database name (as its owner calls it).
DATABASES = {
    "batch_db_url": "batchdb",
    "user_db_url": "userdb",
    "inscription_db_url": "inscription_db",
    "defense_db_url": "defensedb",
    "notification_db_url": "notification_db",
}

_CRON_FIELDS = (6, 7)


class DoctoralOutboxSettings(BaseSettings, OutboxSettings):
    """The outbox relay of the doctoral service (``DOCTORAL_OUTBOX_*``)."""

    model_config = SettingsConfigDict(env_prefix="DOCTORAL_OUTBOX_", extra="ignore")


class DoctoralSettings(ServiceSettings):
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
    jwt_leeway_s: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Clock skew tolerated between user-service and us on exp, nbf and iat.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            'Addresses or networks (JSON list, e.g. ["10.0.0.0/8"]) of the proxies whose '
            "X-Forwarded-For is believed for the audit log's client IP; empty: never believed."
        ),
    )

    trigger_rate_limit: str = Field(
        default="5/minute",
        description="Manual triggers allowed per admin (limits syntax: '5/minute', '10 per hour').",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// (per process) or redis://host:port.",
    )

    outbox: DoctoralOutboxSettings = Field(
        default_factory=DoctoralOutboxSettings,
        description="The outbox relay (DOCTORAL_OUTBOX_*).",
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
    token_cleanup_one_transaction: bool = Field(
        default=True,
        description="With userdb on batchdb's server under one account, each chunk's DELETE "
        "and checkpoint commit as one transaction (else two commits).",
    )
    token_cleanup_skip_limit: int = Field(
        default=10, ge=0, description="Items a tokenCleanupJob step may skip before it fails."
    )
    duree_alert_one_transaction: bool = Field(
        default=True,
        description="With inscription_db on batchdb's server under one account, each chunk's "
        "owner rows, reminders and checkpoint commit as one transaction (else two commits).",
    )
    duree_alert_skip_limit: int = Field(
        default=10, ge=0, description="Enrollments dureeDoctoratAlertJob may skip before failing."
    )
    job_retry_attempts: int = Field(
        default=4, ge=1, le=20, description="Tries of a chunk on a transient database error."
    )
    job_retry_initial_backoff_s: float = Field(
        default=0.1, ge=0, le=60, description="First backoff before a retry (then doubling)."
    )
    job_retry_max_backoff_s: float = Field(
        default=2.0, ge=0, le=300, description="Longest backoff between two retries."
    )
    duree_alert_chunk_size: int = Field(default=50, ge=1, le=10_000)

    duree_alert_rule: Rule = Field(
        default=Rule.OWNER,
        description=(
            "Which thresholds dureeDoctoratAlertJob applies: 'inscription-service' (the owner's, "
            "years of 365.25 days: 2.5 / 5.5 / 6.0) or 'batch-service' (the old batch's whole "
            "months: ALERT_3_YEARS_FROM_MONTHS… MAX_DURATION_MONTHS)."
        ),
    )
    alert_seuil_3_ans_years: float = Field(
        default=2.5, gt=0, description="Owner's rule: APPROCHE_3_ANS from this many years."
    )
    alert_seuil_6_ans_years: float = Field(
        default=5.5, gt=0, description="Owner's rule: APPROCHE_6_ANS from this many years."
    )
    alert_limite_max_years: float = Field(
        default=6.0, gt=0, description="Owner's rule: DEPASSE_6_ANS and block from this many years."
    )
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

    monthly_report_cron: str = Field(
        default="0 0 9 1 * ?", description="monthlyReportJob (Quartz): 09:00 on the 1st."
    )
    reports_dir: Path | None = Field(
        default=None, description="Where the PDF reports are written. Unset: DATA_DIR/reports."
    )
    report_institution_name: str = Field(
        default="École doctorale", max_length=200, description="Name in the report's header."
    )
    report_logo_path: Path | None = Field(
        default=None, description="PNG or JPEG logo in the report's header (unset: none)."
    )
    report_recipients: list[str] = Field(
        default_factory=list,
        description="Extra recipients of the monthly report (JSON list), besides ROLE_ADMIN users.",
    )
    report_base_url: str = Field(
        default="http://localhost:8085",
        description="Public base URL of this service, for the report's download link.",
    )
    report_alert_failure_rate_percent: float = Field(
        default=10.0, ge=0, le=100, description="Alert when notification failures exceed this %."
    )
    report_alert_over_6_years: int = Field(
        default=0, ge=0, description="Alert when more doctorants than this are past 6 years."
    )
    report_alert_validation_days: float = Field(
        default=30.0, ge=0, description="Alert when the median days to validation exceed this."
    )

    user_service_url: str | None = Field(
        default=None,
        description=(
            "user-service's base URL (e.g. http://user-service:8081): the console's sign-in form "
            "posts to its /api/auth/login. Unset: the console asks for a pasted token."
        ),
    )

    eureka_url: str | None = Field(
        default=None, description="Eureka server (e.g. http://eureka:eureka123@host:8761/eureka/)."
    )
    eureka_app_name: str = Field(default="BATCH-SERVICE", description="Name registered in Eureka.")
    eureka_instance_host: str | None = Field(
        default=None, description="Host announced to Eureka (default: HOST)."
    )

    archive_cron: str = Field(
        default="0 0 3 1 1,4,7,10 ?", description="archiveJob schedule (Quartz, quarterly)."
    )
    archive_chunk_size: int = Field(default=20, ge=1, le=1000, description="Records per chunk.")
    archive_after_months: int = Field(
        default=12, ge=1, description="Archive enrollments/defenses closed this many months ago."
    )
    archive_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Archive master keys by id (JSON object of base64 keys, >= 32 bytes each).",
    )
    archive_key_file: Path | None = Field(
        default=None, description="File of archive master keys, one `id=base64key` per line."
    )
    archive_key_id: str | None = Field(
        default=None, description="Key id new archives use (default: the last key listed)."
    )
    archives_dir: Path | None = Field(
        default=None, description="Where archives are written. Unset: DATA_DIR/archives."
    )
    uploads_dir: Path | None = Field(
        default=None,
        description="inscription-service's upload directory (app.upload.dir). "
        "Unset: DATA_DIR/uploads.",
    )
    pv_storage_dir: Path | None = Field(
        default=None,
        description="defense-service's defense.pv.storage.path. Unset: DATA_DIR/proces-verbaux.",
    )
    sent_notification_retention_months: int = Field(
        default=3, ge=1, description="SENT notifications older than this (date_envoi) deleted."
    )
    application_log_retention_months: int = Field(
        default=6, ge=1, description="Application log files older than this deleted."
    )
    application_log_dir: Path | None = Field(
        default=None, description="Directory of application log files to clean; unset: none."
    )
    error_log_patterns: list[str] = Field(
        default_factory=lambda: ["*error*", "*.err"],
        description="Log file name patterns (fnmatch) that are errors: kept for ever.",
    )
    user_audit_retention_days: int = Field(
        default=365, ge=0, description="userdb user_audits older than this deleted; 0: kept."
    )

    @field_validator("trigger_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '5/minute': {exc}") from None
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].removeprefix("async+")
        if scheme not in ("memory", "redis", "rediss"):
            raise ValueError("must start with memory://, redis:// or rediss://")
        return value

    @field_validator(
        "token_cleanup_cron",
        "duree_alert_cron",
        "monthly_report_cron",
        "archive_cron",
        "data_consistency_cron",
    )
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
        if not (
            self.alert_seuil_3_ans_years
            < self.alert_seuil_6_ans_years
            < self.alert_limite_max_years
        ):
            raise ValueError(
                "alert thresholds must satisfy ALERT_SEUIL_3_ANS_YEARS < ALERT_SEUIL_6_ANS_YEARS "
                "< ALERT_LIMITE_MAX_YEARS"
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
    def reports_directory(self) -> Path:
        return self.reports_dir if self.reports_dir is not None else self.data_dir / "reports"

    @property
    def archives_path(self) -> Path:
        return self.archives_dir or self.data_dir / "archives"

    @property
    def uploads_path(self) -> Path:
        return self.uploads_dir or self.data_dir / "uploads"

    @property
    def pv_storage_path(self) -> Path:
        return self.pv_storage_dir or self.data_dir / "proces-verbaux"

    @property
    def jwt_secret_file(self) -> Path:
        return self.data_dir / "jwt-secret"
