"""Settings shared by every service, built on pydantic-settings.

Each service defines its own ``Settings`` class (with its own env prefix) that
inherits the common blocks below; the app factory builds it with
:func:`load_settings` so that a bad value fails at start with the name of the
environment variable, never at first use, and never echoes a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "KafkaSettings",
    "PoolSettings",
    "ServiceSettings",
    "SettingsError",
    "env_name",
    "load_settings",
]

S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """A setting is invalid; the message names each environment variable at fault."""


class KafkaSettings(BaseSettings):
    """The Kafka cluster, shared by all services (one cluster per deployment)."""

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
    security_protocol: str = Field(default="PLAINTEXT", description="PLAINTEXT or SSL.")


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


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from the environment, or raise :class:`SettingsError` naming the variables."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        secret_fields = {
            n for n, f in cls.model_fields.items() if f.annotation in (SecretStr, SecretStr | None)
        }
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
            if owner is not cls:
                problems.append(f"{env_name(owner, loc)}: {err['msg']} (got {err.get('input')!r})")
                continue
            shown = "" if (loc and loc[0] in secret_fields) else f" (got {err.get('input')!r})"
            problems.append(f"{env_name(cls, loc)}: {err['msg']}{shown}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
