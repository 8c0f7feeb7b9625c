"""Settings of the trade service (``TRADE_*`` variables).

The execution-service client settings keep the original's property names under
one scheme: ``execution.service.batch.size`` is ``TRADE_EXECUTION_SERVICE_BATCH_SIZE``,
``execution.service.retry.max-attempts`` is ``TRADE_EXECUTION_SERVICE_RETRY_MAX_ATTEMPTS``
and so on (docs/configuration.md lists every one). The original's own spelling
(``EXECUTION_SERVICE_BASE_URL``, ``SPRING_DATASOURCE_URL``, … as Spring's relaxed binding
reads them) works too; tranche's variable wins when both are set
(:mod:`tranche.core.original_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tranche.core.original_names import SpringNames
from tranche.core.settings import (
    Attempts,
    BackoffMultiplier,
    RetrySettings,
    ServiceSettings,
    WaitMs,
)

__all__ = ["API_MAX_BATCH_SIZE", "ExecutionServiceRetrySettings", "TradeSettings"]

#: The execution service's default limit per batch request (its ``EXECUTION_MAX_BATCH_SIZE``).
API_MAX_BATCH_SIZE = 100


class ExecutionServiceRetrySettings(SpringNames, BaseSettings, RetrySettings):
    """Retries of one batch request (``TRADE_EXECUTION_SERVICE_RETRY_*``).

    The variables keep the original's property names (``retry.initial-delay``,
    ``retry.multiplier``, ``retry.max-delay``), hence the aliases.
    """

    model_config = SettingsConfigDict(
        env_prefix="TRADE_EXECUTION_SERVICE_RETRY_",
        env_prefix_target="all",
        extra="ignore",
        populate_by_name=True,
    )
    group_prefix: ClassVar[str] = "execution_service_retry_"
    spring_properties: ClassVar[Mapping[str, str]] = {
        "execution.service.retry.max-attempts": "max_attempts",
        "execution.service.retry.initial-delay": "initial_backoff_ms",
        "execution.service.retry.multiplier": "backoff_multiplier",
        "execution.service.retry.max-delay": "max_backoff_ms",
    }

    max_attempts: Attempts = Field(
        default=5, description="Attempts per batch request (the first one included)."
    )
    initial_backoff_ms: WaitMs = Field(
        default=1000,
        validation_alias=AliasChoices("initial_delay_ms", "initial_backoff_ms"),
        description="First backoff.",
    )
    backoff_multiplier: BackoffMultiplier = Field(
        default=2.0,
        validation_alias=AliasChoices("multiplier", "backoff_multiplier"),
        description="Backoff growth.",
    )
    max_backoff_ms: WaitMs = Field(
        default=30_000,
        validation_alias=AliasChoices("max_delay_ms", "max_backoff_ms"),
        description="Longest backoff.",
    )


class TradeSettings(SpringNames, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRADE_", extra="ignore")
    spring_properties: ClassVar[Mapping[str, str]] = {
        "server.port": "port",
        "server.address": "host",
        "execution.service.base-url": "execution_service_base_url",
        "execution.service.connect-timeout": "execution_service_connect_timeout_ms",
        "execution.service.read-timeout": "execution_service_read_timeout_ms",
        "execution.service.batch.size": "execution_service_batch_size",
        "execution.service.batch.max-size": "execution_service_max_size",
        "execution.service.batch.enable-batching": "execution_service_enable_batching",
        "execution.service.batch.retry-failed-individually": (
            "execution_service_retry_failed_individually"
        ),
        "execution.service.batch.metrics-enabled": "execution_service_metrics_enabled",
        "execution.service.batch.initial-retry-delay-ms": (
            "execution_service_individual_retry_initial_delay_ms"
        ),
        "execution.service.batch.max-retry-delay-ms": (
            "execution_service_individual_retry_max_delay_ms"
        ),
        "execution.service.batch.retry-multiplier": "execution_service_individual_retry_multiplier",
    }
    spring_datasource: ClassVar[str | None] = "database_url"

    port: int = Field(default=8082, ge=1, le=65535, description="HTTP port.")
    database_url: str | None = Field(
        default=None,
        description="The trade database. Unset: SQLite file trade.db in the data directory.",
    )

    execution_service_base_url: str = Field(
        default="http://127.0.0.1:8084", description="Base URL of the execution service."
    )
    execution_service_connect_timeout_ms: int = Field(default=15_000, ge=1)
    execution_service_read_timeout_ms: int = Field(default=30_000, ge=1)
    execution_service_max_connections: int = Field(
        default=20, ge=1, le=1000, description="Pooled HTTP connections to the execution service."
    )
    execution_service_retry: ExecutionServiceRetrySettings = Field(
        default_factory=ExecutionServiceRetrySettings,
        description="Retries of one batch request (TRADE_EXECUTION_SERVICE_RETRY_*).",
    )

    execution_service_batch_size: int = Field(
        default=50,
        description="Executions per batch request; above MAX_SIZE it is capped, below 1 "
        "the default (50) is used.",
    )
    execution_service_max_size: int = Field(
        default=API_MAX_BATCH_SIZE,
        ge=1,
        le=10_000,
        description="Largest batch the execution service accepts (its EXECUTION_MAX_BATCH_SIZE).",
    )
    execution_service_enable_batching: bool = Field(
        default=True, description="false: one execution per request."
    )
    execution_service_max_in_flight: int = Field(
        default=4, ge=1, le=64, description="Batch requests sent concurrently."
    )
    execution_service_retry_failed_individually: int = Field(
        default=3,
        ge=0,
        le=20,
        description="Attempts to resend, one by one, items that failed for a transient reason.",
    )
    execution_service_individual_retry_initial_delay_ms: int = Field(default=2_000, ge=0)
    execution_service_individual_retry_max_delay_ms: int = Field(default=30_000, ge=0)
    execution_service_individual_retry_multiplier: float = Field(default=2.0, ge=1.0)
    submission_lease_s: int = Field(
        default=3600,
        ge=10,
        description="An execution marked in flight longer than this (its submitter died) may "
        "be submitted again.",
    )
    execution_service_metrics_enabled: bool = Field(
        default=True, description="Record bulk-submission metrics."
    )

    @property
    def effective_batch_size(self) -> int:
        """The batch size actually used: 1 without batching, capped at the maximum."""
        if not self.execution_service_enable_batching:
            return 1
        size = self.execution_service_batch_size
        if size < 1:
            size = 50
        return min(size, self.execution_service_max_size)

    def trade_database_url(self) -> str:
        return self.database_url or self.sqlite_url("trade")
