"""Settings of the execution service (``EXECUTION_*`` variables).

The original's ``batch.execution.*`` properties map onto flat names:
``bulk-insert-batch-size`` is ``EXECUTION_BULK_INSERT_BATCH_SIZE``,
``performance.enable-dynamic-batch-sizing`` is
``EXECUTION_ENABLE_DYNAMIC_BATCH_SIZING`` and so on; Kafka retry, backoff, circuit
breaker and dead-letter settings are the outbox's (``EXECUTION_OUTBOX_*``, the nested
``outbox`` block) and the fill callbacks' are ``EXECUTION_CALLBACK_*`` (``callback``).
docs/configuration.md lists every one.

The original's own property names work too, as its manifests set them (Spring relaxed
binding, e.g. ``BATCH_EXECUTION_BULK_INSERT_BATCH_SIZE``, ``SPRING_DATASOURCE_URL``):
``spring_properties`` below maps each onto tranche's setting, and tranche's variable
wins when both are set (:mod:`tranche.core.original_names`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tranche.core.original_names import SpringNames
from tranche.core.outbox import OutboxSettings
from tranche.core.settings import Attempts, RetrySettings, ServiceSettings, WaitMs

__all__ = [
    "DEFAULT_STATUSES",
    "DEFAULT_TRADE_TYPES",
    "TYPE_ID",
    "CallbackSettings",
    "ExecutionOutboxSettings",
    "ExecutionSettings",
    "InsertMethodName",
]

#: What the trade service sends (its trade_type table) — the original accepted BUY/SELL only.
DEFAULT_TRADE_TYPES = ("BUY", "SELL", "SHORT", "COVER", "EXRC")
#: The trade service's ten status codes, then the original's own list (NEW, PENDING, FILLED,
#: CANCELLED, REJECTED), so either client keeps working.
DEFAULT_STATUSES = (
    "NEW",
    "SENT",
    "WORK",
    "PART",
    "FULL",
    "HOLD",
    "CNCL",
    "CNCLD",
    "CPART",
    "DEL",
    "PENDING",
    "FILLED",
    "CANCELLED",
    "REJECTED",
)
#: The ``__TypeId__`` header spring-kafka's JsonSerializer set; Spring consumers map on it.
TYPE_ID = "org.kasbench.globeco_execution_service.ExecutionDTO"

InsertMethodName = Literal["auto", "copy", "unnest", "values", "row"]

CodeList = Annotated[tuple[str, ...], NoDecode]


class ExecutionOutboxSettings(SpringNames, BaseSettings, OutboxSettings):
    """The outbox relay of the execution service (``EXECUTION_OUTBOX_*``)."""

    model_config = SettingsConfigDict(env_prefix="EXECUTION_OUTBOX_", extra="ignore")
    #: The original's Kafka retry and circuit-breaker properties (milliseconds both sides).
    spring_properties: ClassVar[Mapping[str, str]] = {
        "batch.execution.kafka.max-attempts": "max_attempts",
        "batch.execution.kafka.initial-delay": "initial_backoff_ms",
        "batch.execution.kafka.backoff-multiplier": "backoff_multiplier",
        "batch.execution.kafka.max-delay": "max_backoff_ms",
        "batch.execution.kafka.enable-dead-letter-queue": "dlq_enabled",
        "batch.execution.performance.circuit-breaker-failure-threshold": (
            "breaker_failure_threshold"
        ),
        "batch.execution.performance.circuit-breaker-recovery-timeout": "breaker_reset_ms",
    }


class CallbackSettings(BaseSettings, RetrySettings):
    """Fill deliveries to the trade service (``EXECUTION_CALLBACK_*``)."""

    model_config = SettingsConfigDict(env_prefix="EXECUTION_CALLBACK_", extra="ignore")
    group_prefix: ClassVar[str] = "callback_"

    max_attempts: Attempts = Field(
        default=50, description="Delivery attempts before a fill is FAILED."
    )
    max_backoff_ms: WaitMs = Field(default=300_000, description="Longest wait between attempts.")
    poll_interval_ms: int = Field(
        default=1000, ge=10, le=3_600_000, description="How often due callbacks are looked for."
    )


class ExecutionSettings(SpringNames, ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXECUTION_", extra="ignore")
    #: The original's properties with the same meaning and unit as a setting here; the
    #: first one set wins (its code let ``batch.execution.database.*`` override Hikari's).
    spring_properties: ClassVar[Mapping[str, str]] = {
        "server.port": "port",
        "server.address": "host",
        "kafka.topic.orders": "orders_topic",
        "security-service.base-url": "security_service_base_url",
        "trade.service.base-url": "trade_service_base_url",
        "trade.service.timeout": "trade_service_timeout_ms",
        "batch.execution.bulk-insert-batch-size": "bulk_insert_batch_size",
        "batch.execution.max-concurrent-batches": "max_concurrent_bulk_inserts",
        "batch.execution.database.max-pool-size": "db_pool_size",
        "spring.datasource.hikari.maximum-pool-size": "db_pool_size",
        "batch.execution.performance.enable-dynamic-batch-sizing": "enable_dynamic_batch_sizing",
        "batch.execution.performance.min-batch-size": "min_chunk_size",
        "batch.execution.performance.max-batch-size": "max_chunk_size",
    }
    spring_datasource: ClassVar[str | None] = "database_url"

    port: int = Field(default=8084, ge=1, le=65535, description="HTTP port.")
    database_url: str | None = Field(
        default=None,
        description="The execution database. Unset: SQLite file execution.db in the data "
        "directory. Production: PostgreSQL.",
    )

    cors_allowed_origins: str = Field(
        default="*",
        description="Origins browsers may call from (comma-separated; '*' any, as the "
        "original; empty: no CORS headers).",
    )

    outbox: ExecutionOutboxSettings = Field(
        default_factory=ExecutionOutboxSettings,
        description="The outbox relay (EXECUTION_OUTBOX_*).",
    )

    # --- batch endpoint ------------------------------------------------------------------
    max_batch_size: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most executions one POST /api/v1/executions/batch may carry.",
    )
    bulk_insert_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Rows per insert transaction (chunk)."
    )
    insert_method: InsertMethodName = Field(
        default="auto",
        description="How a chunk is inserted: auto (the fastest measured for the database: "
        "PostgreSQL COPY, SQLite multi-row VALUES), copy, unnest, values, or row "
        "(one INSERT per row, the old path).",
    )
    allowed_trade_types: CodeList = Field(
        default=DEFAULT_TRADE_TYPES,
        description="Accepted tradeType values (comma-separated, case-sensitive).",
    )
    allowed_statuses: CodeList = Field(
        default=DEFAULT_STATUSES,
        description="Accepted executionStatus values on create (comma-separated, case-sensitive).",
    )
    enable_dynamic_batch_sizing: bool = Field(
        default=False, description="Adjust the chunk size from measured insert times and pool load."
    )
    min_chunk_size: int = Field(
        default=50, ge=1, le=10_000, description="Smallest chunk dynamic sizing may choose."
    )
    max_chunk_size: int = Field(
        default=2000, ge=1, le=10_000, description="Largest chunk dynamic sizing may choose."
    )
    chunk_target_ms: int = Field(
        default=500,
        ge=10,
        le=60_000,
        description="Dynamic sizing keeps one chunk's insert under about this long.",
    )
    parallel_chunks: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Chunks of one request written at once, each in its own transaction "
        "(PostgreSQL copy/unnest, requests without an Idempotency-Key; 1: one after another).",
    )
    backlog_limit: int = Field(
        default=5000,
        ge=0,
        le=1_000_000,
        description="Outbox rows waiting for the broker above which a new chunk waits for the "
        "relay to catch up (0: never wait).",
    )
    backlog_wait_ms: int = Field(
        default=2000,
        ge=0,
        le=60_000,
        description="Longest such wait per chunk; then it is written anyway.",
    )
    max_concurrent_bulk_inserts: int | None = Field(
        default=None,
        ge=1,
        le=500,
        description="Bulk inserts running at once across requests. Unset: 2 (at most half "
        "of pool size + overflow), 1 on SQLite.",
    )

    # --- Kafka ---------------------------------------------------------------------------
    orders_topic: str = Field(default="orders", description="Topic of new executions.")
    create_orders_topic: bool = Field(
        default=True,
        description="Create the topic at start-up if missing (never fails the start).",
    )
    orders_topic_partitions: int = Field(
        default=20, ge=1, le=10_000, description="Partitions of a topic created at start-up."
    )
    orders_topic_replication_factor: int = Field(
        default=1, ge=1, le=100, description="Replication factor of a topic created at start-up."
    )
    kafka_type_id: str = Field(
        default=TYPE_ID,
        description="Value of the __TypeId__ header (Spring consumers pick the class by it).",
    )
    publish_wait_ms: int = Field(
        default=200,
        ge=0,
        le=30_000,
        description="How long a create waits for the broker's acknowledgement so that "
        "sentTimestamp is filled in the response (0: do not wait). Never fails the request.",
    )

    # --- security service ----------------------------------------------------------------
    security_service_base_url: str | None = Field(
        default=None,
        description="e.g. http://globeco-security-service:8000. Unset: tickers are null and "
        "the ticker filter answers 400.",
    )
    security_service_timeout_ms: int = Field(default=5000, ge=10, le=120_000)
    security_service_batch_size: int = Field(
        default=50, ge=1, le=50, description="Security ids per lookup call."
    )
    security_service_cooldown_ms: int = Field(
        default=10_000,
        ge=0,
        description="After a failed call, tickers are null without calling for this long.",
    )
    security_cache_size: int = Field(default=10_000, ge=1, le=10_000_000)
    security_cache_ttl_s: int = Field(
        default=86_400, ge=1, description="How long a found ticker is cached."
    )
    security_negative_cache_ttl_s: int = Field(
        default=60, ge=0, description="How long an id the service does not know is cached."
    )

    # --- trade-service fill callbacks ----------------------------------------------------
    trade_service_base_url: str | None = Field(
        default=None,
        description="e.g. http://globeco-trade-service:8082. Unset: fills are not reported.",
    )
    trade_service_timeout_ms: int = Field(default=5000, ge=10, le=120_000)
    trade_service_conflict_retries: int = Field(
        default=3, ge=0, le=50, description="Re-reads after a 409 within one delivery attempt."
    )
    callback: CallbackSettings = Field(
        default_factory=CallbackSettings,
        description="Fill deliveries: attempts, backoff, poll (EXECUTION_CALLBACK_*).",
    )

    # --- idempotency ---------------------------------------------------------------------
    idempotency_ttl_s: int = Field(
        default=86_400, ge=60, description="How long a stored answer is replayed."
    )
    idempotency_wait_ms: int = Field(
        default=10_000,
        ge=0,
        le=300_000,
        description="A duplicate of a request still running waits this long, then gets 409.",
    )
    idempotency_lease_s: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="A crashed owner's key is taken over (and its work resumed) after this.",
    )

    @field_validator("allowed_trade_types", "allowed_statuses", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, (list, tuple)):
            codes = tuple(str(v) for v in value if str(v))
            if not codes:
                raise ValueError("needs at least one value")
            return codes
        return value

    @field_validator("orders_topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not value or len(value) > 240 or not all(c.isalnum() or c in "._-" for c in value):
            raise ValueError("must be a Kafka topic name (letters, digits, '.', '_', '-')")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_chunk_size > self.max_chunk_size:
            raise ValueError("EXECUTION_MIN_CHUNK_SIZE must not exceed EXECUTION_MAX_CHUNK_SIZE")
        return self

    def execution_database_url(self) -> str:
        return self.database_url or self.sqlite_url("execution")
