"""Settings of the batch engine (``BATCH_*``), nested into the settings of a service using it."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BatchSettings"]


class BatchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATCH_", extra="ignore")

    timezone: str = Field(
        default="UTC", description="IANA time zone in which cron expressions are read."
    )
    misfire_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description=(
            "An occurrence missed by up to this much (scheduler down or busy) still fires; "
            "older ones are skipped and logged as misfires (Quartz's default threshold)."
        ),
    )
    scheduler_enabled: bool = Field(
        default=True, description="Fire cron schedules in this process (false: manual runs only)."
    )
    scheduler_max_sleep_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest scheduler sleep between checks (bounds the reaction to clock jumps).",
    )
    lock_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="How often a running execution renews its job lock."
    )
    lock_stale_after_seconds: float = Field(
        default=120.0,
        gt=0,
        description=(
            "A job lock not renewed for this long belongs to a dead process: the next run "
            "takes it over and marks that execution FAILED (restartable)."
        ),
    )
    startup_misfire_grace_seconds: float | None = Field(
        default=None,
        ge=0,
        description=(
            "At start, an occurrence missed while no replica ran fires once if it is at most "
            "this old; older ones are logged as misfires. Unset: the job's own period "
            "(a daily job catches up yesterday's missed run, not last week's)."
        ),
    )
    shutdown_grace_seconds: float = Field(
        default=30.0,
        ge=0,
        description="On shutdown, wait this long for running jobs to stop after their chunk.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _stale_after_beats(self) -> BatchSettings:
        if self.lock_stale_after_seconds < 3 * self.lock_heartbeat_seconds:
            raise ValueError(
                "lock_stale_after_seconds must be at least 3 x lock_heartbeat_seconds, "
                "or a slow heartbeat would let another process take a live job's lock"
            )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def misfire_grace(self) -> timedelta:
        return timedelta(seconds=self.misfire_grace_seconds)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(seconds=self.lock_stale_after_seconds)
