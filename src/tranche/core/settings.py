"""Settings shared by every service, built on pydantic-settings.

Each service defines its own ``Settings`` class (with its own env prefix) that
inherits :class:`ServiceSettings` and nests blocks of related settings (``kafka``,
``outbox``, retry blocks built on :class:`RetrySettings`), each block a ``BaseSettings``
with its own prefix so the variables keep their flat names. The app factory builds it
with :func:`load_settings` so that a bad value fails at start with the name of the
environment variable, never at first use, and never echoes a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from aiokafka.helpers import create_ssl_context
from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from tranche.core.original_names import SpringNames, SpringPropertyError
from tranche.core.resilience import Backoff

__all__ = [
    "Attempts",
    "BackoffMultiplier",
    "ClientRole",
    "KafkaSettings",
    "PoolSettings",
    "RetrySettings",
    "ServiceSettings",
    "SettingsError",
    "WaitMs",
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


class KafkaSettings(SpringNames, BaseSettings):
    """The Kafka cluster, shared by all services (one cluster per deployment).

    ``SPRING_KAFKA_BOOTSTRAP_SERVERS`` (the originals' ``spring.kafka.bootstrap-servers``)
    is read when ``KAFKA_BOOTSTRAP_SERVERS`` is not set.

    :meth:`client_options` is the one place that turns these into aiokafka keyword
    arguments, for the producer, the consumers and the admin client alike.
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")
    spring_properties: ClassVar[Mapping[str, str]] = {
        "spring.kafka.bootstrap-servers": "bootstrap_servers",
        "spring.kafka.producer.client-id": "client_id",
    }

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


#: Bounds shared by every retry setting, so a subclass that changes a default keeps them.
Attempts = Annotated[int, Field(ge=1, le=10_000)]
WaitMs = Annotated[int, Field(ge=0, le=86_400_000)]
BackoffMultiplier = Annotated[float, Field(ge=1.0, le=100.0)]


class RetrySettings(BaseModel):
    """The retry quartet: attempts, then exponential waits between them, capped.

    Every retrying component (outbox relay, fill callbacks, the trade service's calls to
    the execution service) embeds this one model, so the bounds and the "cap below the
    first wait" check exist once. A service binds it to its variables by subclassing it
    together with ``BaseSettings`` and an ``env_prefix`` (see ``ExecutionSettings``); a
    subclass may change the defaults (keeping the bounds via :data:`Attempts` etc.) and
    keep an original's variable names with ``validation_alias``.
    """

    #: The group's name in its service's settings (``outbox_``), used in error messages.
    group_prefix: ClassVar[str] = ""

    max_attempts: Attempts = Field(default=3, description="Attempts before giving up.")
    initial_backoff_ms: WaitMs = Field(
        default=1000, description="Wait after the first failed attempt."
    )
    backoff_multiplier: BackoffMultiplier = Field(
        default=2.0, description="Each further wait is this many times longer."
    )
    max_backoff_ms: WaitMs = Field(default=30_000, description="Longest wait between attempts.")

    @model_validator(mode="after")
    def _cap_not_below_first_wait(self) -> Self:
        if self.max_backoff_ms < self.initial_backoff_ms:
            cap, first = self._setting("max_backoff_ms"), self._setting("initial_backoff_ms")
            raise ValueError(f"{cap} must be >= {first}")
        return self

    @classmethod
    def _setting(cls, field: str) -> str:
        """``field`` as the service spells it (its variable without the service prefix)."""
        alias = cls.model_fields[field].validation_alias
        name = str(alias.choices[0]) if isinstance(alias, AliasChoices) else field
        return cls.group_prefix + name

    def backoff(self) -> Backoff:
        return Backoff(
            max_attempts=self.max_attempts,
            initial_s=self.initial_backoff_ms / 1000,
            multiplier=self.backoff_multiplier,
            max_s=self.max_backoff_ms / 1000,
        )


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

    @model_validator(mode="before")
    @classmethod
    def _fold_block_keywords(cls, data: Any) -> Any:
        """Accept a nested block's setting by its flat name, as its variable spells it.

        ``ExecutionSettings(outbox_batch_size=50)`` is ``EXECUTION_OUTBOX_BATCH_SIZE=50``:
        a keyword is always the variable without the service prefix, lowercased. The
        block's other settings still come from the environment.
        """
        if not isinstance(data, dict):
            return data
        prefix = str(cls.model_config.get("env_prefix", "")).lower()
        for name, field in cls.model_fields.items():
            block = field.annotation
            if not (isinstance(block, type) and issubclass(block, BaseSettings)):
                continue
            group = str(block.model_config.get("env_prefix", "")).lower()
            if not (prefix and group.startswith(prefix) and group != prefix):
                continue
            group = group[len(prefix) :]
            names = _keyword_names(block)
            flat = {
                names[k[len(group) :]]: data.pop(k)
                for k in [k for k in data if k.startswith(group) and k[len(group) :] in names]
            }
            if flat:
                given = data.get(name)
                base = given.model_dump() if isinstance(given, BaseModel) else given
                data[name] = {**(base if isinstance(base, dict) else block().model_dump()), **flat}
        return data

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


def _keyword_names(block: type[BaseModel]) -> dict[str, str]:
    """Flat spelling (variable suffix, lowercased) → field name, for each field of ``block``."""
    names = {}
    for field_name, field in block.model_fields.items():
        names[field_name] = field_name
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update({str(choice).lower(): field_name for choice in alias.choices})
    return names


def env_name(cls: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """The environment variable that feeds the field at ``loc`` of ``cls``.

    A ``loc`` into a nested settings block (``("outbox", "batch_size")``) is named by
    that block's own prefix (``EXECUTION_OUTBOX_BATCH_SIZE``).
    """
    config = cls.model_config
    prefix = str(config.get("env_prefix", ""))
    field = cls.model_fields.get(str(loc[0])) if loc else None
    nested = field.annotation if field else None
    if len(loc) > 1 and isinstance(nested, type) and issubclass(nested, BaseSettings):
        return env_name(nested, loc[1:])
    alias = field.validation_alias if field else None
    aliased = prefix if config.get("env_prefix_target") in ("alias", "all") else ""
    if isinstance(alias, str):
        return (aliased + alias).upper()
    if isinstance(alias, AliasChoices):
        return (aliased + str(alias.choices[0])).upper()
    delim = str(config.get("env_nested_delimiter") or "__")
    return (prefix + delim.join(str(p) for p in loc)).upper()


def _is_secret(cls: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether ``loc`` points at (or into) a secret field, nested blocks included."""
    field = cls.model_fields.get(str(loc[0])) if loc else None
    if field is None:
        return False
    if field.annotation in (SecretStr, SecretStr | None):
        return True
    nested = field.annotation
    return (
        isinstance(nested, type) and issubclass(nested, BaseModel) and _is_secret(nested, loc[1:])
    )


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, or raise :class:`SettingsError` naming the variables.

    The offending value is quoted, except for secrets and for errors about the settings
    as a whole (whose input is every value, secrets included).
    """
    try:
        return cls(**overrides)
    except SpringPropertyError as exc:  # raised by a source, before validation
        raise SettingsError(f"invalid settings: {exc}") from None
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
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if not loc:
                problems.append(f"{owner.model_config.get('env_prefix', '')}*: {err['msg']}")
                continue
            # A block's input is all its values (secrets included): quote scalars only.
            value = err.get("input")
            hidden = _is_secret(owner, loc) or isinstance(value, dict)
            shown = "" if hidden else f" (got {value!r})"
            problems.append(f"{env_name(owner, loc)}: {err['msg']}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
