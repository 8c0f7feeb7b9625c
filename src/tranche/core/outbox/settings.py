"""Outbox and relay settings: the model the relay takes, nested into each publishing service.

A service binds :class:`OutboxSettings` to its own variables by subclassing it with
``BaseSettings`` and the prefix ``<SERVICE>_OUTBOX_`` (``ExecutionOutboxSettings``), and
declares it as its ``outbox`` field; the relay is built with ``settings.outbox``. The retry
quartet (``MAX_ATTEMPTS``, ``INITIAL_BACKOFF_MS``, ``BACKOFF_MULTIPLIER``,
``MAX_BACKOFF_MS``) and its checks are :class:`~tranche.core.settings.RetrySettings`'.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from tranche.core.settings import RetrySettings

__all__ = ["OutboxSettings"]


class OutboxSettings(RetrySettings):
    """How the relay claims, publishes, retries and dead-letters outbox rows."""

    group_prefix: ClassVar[str] = "outbox_"

    batch_size: int = Field(
        default=500, ge=1, le=5000, description="Rows a relay claims and publishes per round."
    )
    poll_interval_ms: int = Field(
        default=500,
        ge=10,
        le=3_600_000,
        description=(
            "How often the relay looks for rows when nothing woke it (this process's own "
            "commits wake it at once; the poll catches rows other replicas committed)."
        ),
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Consecutive broker-unavailable rounds that open the circuit.",
    )
    breaker_reset_ms: int = Field(
        default=60_000, ge=0, description="How long the circuit stays open before one probe."
    )
    dlq_enabled: bool = Field(
        default=True,
        description="Publish dead rows to '<topic>.dlq' (they are marked DEAD anyway).",
    )
    max_message_bytes: int = Field(
        default=1_000_000,
        ge=1024,
        le=100 * 1024 * 1024,
        description="Largest record (key + value + headers) sent; larger ones are dead-lettered.",
    )
    relay_enabled: bool = Field(
        default=True, description="Run the relay in this process (false: enqueue only)."
    )
    sent_retention_hours: float = Field(
        default=168.0, ge=0, description="SENT rows older than this are deleted (0: keep them)."
    )
    relay_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description=(
            "Rounds one relay runs at once on PostgreSQL/MariaDB, so the database and the "
            "broker work in parallel (SQLite: always 1)."
        ),
    )
    direct_handoff: bool = Field(
        default=True,
        description=(
            "PostgreSQL/MariaDB: hand this process's committed events to the producer at "
            "once instead of waiting for a relay round (the row stays the backstop)."
        ),
    )
