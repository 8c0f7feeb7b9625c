"""Outbox and relay settings: the plain model the relay takes, and the mixin services inherit.

A service's ``Settings`` inherits :class:`OutboxSettingsMixin`, so the variables
carry the service's prefix (``EXECUTION_OUTBOX_BATCH_SIZE``); ``settings.outbox()``
turns them into the :class:`OutboxSettings` the relay is built with.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, model_validator

from tranche.core.resilience import Backoff
from tranche.core.settings import ServiceSettings

__all__ = ["OutboxSettings", "OutboxSettingsMixin"]


class OutboxSettings(BaseModel):
    """How the relay claims, publishes, retries and dead-letters outbox rows."""

    batch_size: int = Field(default=500, ge=1, le=5000)
    poll_interval_ms: int = Field(default=500, ge=10, le=3_600_000)
    max_attempts: int = Field(default=3, ge=1, le=1000)
    initial_backoff_ms: int = Field(default=1000, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1.0, le=100.0)
    max_backoff_ms: int = Field(default=30_000, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    breaker_reset_ms: int = Field(default=60_000, ge=0)
    dlq_enabled: bool = True
    max_message_bytes: int = Field(default=1_000_000, ge=1024, le=100 * 1024 * 1024)
    relay_enabled: bool = True
    sent_retention_hours: float = Field(default=168.0, ge=0)
    relay_concurrency: int = Field(default=2, ge=1, le=16)

    @model_validator(mode="after")
    def _backoff_range(self) -> Self:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError("max_backoff_ms must be >= initial_backoff_ms")
        return self

    def backoff(self) -> Backoff:
        return Backoff(
            max_attempts=self.max_attempts,
            initial_s=self.initial_backoff_ms / 1000,
            multiplier=self.backoff_multiplier,
            max_s=self.max_backoff_ms / 1000,
        )


class OutboxSettingsMixin(ServiceSettings):
    """``<PREFIX>OUTBOX_*`` variables of a service that publishes events."""

    outbox_batch_size: int = Field(
        default=500, ge=1, le=5000, description="Rows a relay claims and publishes per round."
    )
    outbox_poll_interval_ms: int = Field(
        default=500,
        ge=10,
        le=3_600_000,
        description=(
            "How often the relay looks for rows when nothing woke it (this process's own "
            "commits wake it at once; the poll catches rows other replicas committed)."
        ),
    )
    outbox_max_attempts: int = Field(
        default=3, ge=1, le=1000, description="Publish attempts before a row is dead-lettered."
    )
    outbox_initial_backoff_ms: int = Field(
        default=1000, ge=0, description="Wait after the first failed attempt."
    )
    outbox_backoff_multiplier: float = Field(
        default=2.0, ge=1.0, le=100.0, description="Each further wait is this many times longer."
    )
    outbox_max_backoff_ms: int = Field(
        default=30_000, ge=0, description="Longest wait between attempts."
    )
    outbox_breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive broker-unavailable rounds that open the circuit.",
    )
    outbox_breaker_reset_ms: int = Field(
        default=60_000, ge=0, description="How long the circuit stays open before one probe."
    )
    outbox_dlq_enabled: bool = Field(
        default=True,
        description="Publish dead rows to '<topic>.dlq' (they are marked DEAD anyway).",
    )
    outbox_max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        le=100 * 1024 * 1024,
        description="Largest record (key + value + headers) sent; larger ones are dead-lettered.",
    )
    outbox_relay_enabled: bool = Field(
        default=True, description="Run the relay in this process (false: enqueue only)."
    )
    outbox_sent_retention_hours: float = Field(
        default=168.0, ge=0, description="SENT rows older than this are deleted (0: keep them)."
    )

    outbox_relay_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description=(
            "Rounds one relay runs at once on PostgreSQL/MariaDB, so the database and the "
            "broker work in parallel (SQLite: always 1)."
        ),
    )

    @model_validator(mode="after")
    def _outbox_backoff_range(self) -> Self:
        if self.outbox_max_backoff_ms < self.outbox_initial_backoff_ms:
            raise ValueError("outbox_max_backoff_ms must be >= outbox_initial_backoff_ms")
        return self

    def outbox(self) -> OutboxSettings:
        prefix = "outbox_"
        return OutboxSettings(
            **{
                name[len(prefix) :]: getattr(self, name)
                for name in type(self).model_fields
                if name.startswith(prefix)
            }
        )
