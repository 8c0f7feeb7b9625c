"""Settings shared by every service, built on pydantic-settings.

Each service defines its own ``Settings`` class (with its own env prefix) that
inherits the common blocks below; the app factory builds it with
:func:`load_settings` so that a bad value fails at start with the name of the
environment variable, never at first use, and never echoes a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from aiokafka.helpers import create_ssl_context
from pydantic import (
    BaseModel,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ClientRole",
    "KafkaSettings",
    "PoolSettings",
    "ServiceSettings",
    "SettingsError",
    "env_name",
    "load_settings",
]

S = TypeVar("S", bound=BaseSettings)

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: Which aiokafka client the options are for.
ClientRole = Literal["producer", "consumer", "admin"]


class SettingsError(ValueError):
    """A setting is invalid; the message names each environment variable at fault."""


class KafkaSettings(BaseSettings):
    """The Kafka cluster, shared by all services (one cluster per deployment).

    :meth:`client_options` is the one place that turns these into aiokafka keyword
    arguments, for the producer, the consumers and the admin client alike.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str | None = Field(
        default=None,
        description="Comma-separated host:port list. Unset: the embedded Tansu broker is started.",
    )
    client_id: str = Field(default="tranche", description="Client id sent to the broker.")
    enable_idempotence: bool = Field(
        default=True,
        description=(
            "Idempotent producer. Real Kafka clusters support it; the embedded Tansu broker "
            "answers aiokafka's InitProducerId with an error, so the embedded default turns it off."
        ),
    )
    request_timeout_ms: int = Field(default=30_000, ge=1_000, description="Broker request timeout.")
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    sasl_mechanism: SaslMechanism = Field(
        default="PLAIN",
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (SASL_* protocols only).",
    )
    sasl_username: str | None = Field(default=None, description="SASL user (SASL_* protocols).")
    sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (SASL_* protocols; never logged)."
    )
    ssl_cafile: FilePath | None = Field(
        default=None,
        description="PEM file of the CAs that sign the brokers' certificates "
        "(SSL/SASL_SSL; unset: the system's trusted CAs).",
    )
    ssl_certfile: FilePath | None = Field(
        default=None, description="PEM client certificate for mutual TLS (SSL/SASL_SSL)."
    )
    ssl_keyfile: FilePath | None = Field(
        default=None,
        description="PEM private key of the client certificate (unset: inside the certfile).",
    )
    ssl_key_password: SecretStr | None = Field(
        default=None, description="Password of an encrypted client key (never logged)."
    )

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol in ("SSL", "SASL_SSL")
        if sasl and (not self.sasl_username or self.sasl_password is None):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs KAFKA_SASL_USERNAME "
                "and KAFKA_SASL_PASSWORD"
            )
        if not sasl and (self.sasl_username or self.sasl_password is not None):
            raise ValueError(
                "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD are set but KAFKA_SECURITY_PROTOCOL="
                f"{self.security_protocol} does not use SASL (use SASL_SSL or SASL_PLAINTEXT)"
            )
        tls_files = {
            "KAFKA_SSL_CAFILE": self.ssl_cafile,
            "KAFKA_SSL_CERTFILE": self.ssl_certfile,
            "KAFKA_SSL_KEYFILE": self.ssl_keyfile,
            "KAFKA_SSL_KEY_PASSWORD": self.ssl_key_password,
        }
        stray = [name for name, value in tls_files.items() if value is not None]
        if stray and not tls:
            raise ValueError(
                f"{', '.join(stray)} set but KAFKA_SECURITY_PROTOCOL={self.security_protocol} "
                "does not use TLS (use SSL or SASL_SSL)"
            )
        if (self.ssl_keyfile or self.ssl_key_password) and self.ssl_certfile is None:
            raise ValueError("KAFKA_SSL_KEYFILE/KAFKA_SSL_KEY_PASSWORD need KAFKA_SSL_CERTFILE")
        return self

    def client_options(self, role: ClientRole) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer or admin client (``role``).

        The producer waits for every in-sync replica (``acks="all"``) and is idempotent
        as configured; callers add only what is specific to them (batch sizes, group ids).
        """
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            key_password = self.ssl_key_password
            options["ssl_context"] = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
                password=key_password.get_secret_value() if key_password else None,
            )
        if self.security_protocol.startswith("SASL_"):
            assert self.sasl_password is not None  # checked at start by _consistent
            options["sasl_mechanism"] = self.sasl_mechanism
            # aiokafka reads these two for SCRAM as well as for PLAIN.
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        if role == "producer":
            options["acks"] = "all"
            options["enable_idempotence"] = self.enable_idempotence
        return options


class PoolSettings(BaseModel):
    """Connection-pool shape handed to :func:`tranche.core.db.create_engine`."""

    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_recycle: int
    echo: bool = False


class ServiceSettings(BaseSettings):
    """Fields every service has. Subclasses set ``env_prefix`` and add their own."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    data_dir: Path = Field(
        default=Path(".tranche-data"),
        description="Directory for embedded SQLite files, reports and archives.",
    )
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_json: bool = Field(default=True, description="JSON logs (false: human-readable console).")
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted request body (bytes)."
    )
    db_pool_size: int = Field(default=10, ge=1, le=500, description="Connections kept open.")
    db_max_overflow: int = Field(
        default=10, ge=0, le=500, description="Extra connections under load."
    )
    db_pool_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for a connection."
    )
    db_pool_recycle: int = Field(
        default=1800, ge=-1, description="Seconds before a pooled connection is renewed."
    )
    db_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    kafka: KafkaSettings = Field(
        default_factory=KafkaSettings, description="The Kafka cluster (KAFKA_* variables)."
    )

    def pool(self) -> PoolSettings:
        return PoolSettings(
            pool_size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            pool_timeout=self.db_pool_timeout,
            pool_recycle=self.db_pool_recycle,
            echo=self.db_echo,
        )

    def sqlite_url(self, name: str) -> str:
        """URL of an embedded SQLite database file ``name`` inside ``data_dir``."""
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{name}.db').resolve()}"


def env_name(cls: type[BaseSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable that feeds the field at ``loc`` of ``cls``."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    field = cls.model_fields.get(str(loc[0])) if loc else None
    alias = getattr(field, "validation_alias", None) if field else None
    if isinstance(alias, str):
        return alias.upper()
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[0]).upper()
    delim = str(cls.model_config.get("env_nested_delimiter") or "__")
    return (prefix + delim.join(str(p) for p in loc)).upper()


def _secret_fields(cls: type[BaseModel]) -> set[str]:
    return {n for n, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)}


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, or raise :class:`SettingsError` naming the variables.

    The offending value is quoted, except for secrets and for errors about the settings
    as a whole (whose input is every value, secrets included).
    """
    try:
        return cls(**overrides)
    except ValidationError as exc:
        owner: type[BaseSettings] = cls
        for f in cls.model_fields.values():
            nested = f.annotation
            if (
                isinstance(nested, type)
                and issubclass(nested, BaseSettings)
                and nested.__name__ == exc.title
            ):
                owner = nested
        secret_fields = _secret_fields(owner)
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if not loc:
                problems.append(err["msg"])
                continue
            shown = "" if loc[0] in secret_fields else f" (got {err.get('input')!r})"
            problems.append(f"{env_name(owner, loc)}: {err['msg']}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
