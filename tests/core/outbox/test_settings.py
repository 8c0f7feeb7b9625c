"""OUTBOX_* settings of a service: names, bounds, and the relay's settings object (nested)."""

from __future__ import annotations

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tranche.core.outbox import OutboxSettings
from tranche.core.settings import ServiceSettings, SettingsError, load_settings


class ExampleOutboxSettings(BaseSettings, OutboxSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_OUTBOX_", extra="ignore")


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore")
    outbox: ExampleOutboxSettings = Field(default_factory=ExampleOutboxSettings)


def test_defaults_are_the_seeds() -> None:
    s = load_settings(ExampleSettings).outbox
    assert s.model_dump() == OutboxSettings().model_dump()
    assert (s.max_attempts, s.initial_backoff_ms, s.backoff_multiplier, s.max_backoff_ms) == (
        3,
        1000,
        2.0,
        30_000,
    )
    assert (s.breaker_failure_threshold, s.breaker_reset_ms, s.dlq_enabled) == (5, 60_000, True)


def test_variables_carry_the_service_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_OUTBOX_BATCH_SIZE", "50")
    monkeypatch.setenv("EXAMPLE_OUTBOX_DLQ_ENABLED", "false")
    s = load_settings(ExampleSettings).outbox
    assert s.batch_size == 50 and s.dlq_enabled is False


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_OUTBOX_MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError, match="EXAMPLE_OUTBOX_MAX_ATTEMPTS"):
        load_settings(ExampleSettings)


def test_backoff_cap_below_the_first_wait_is_refused() -> None:
    with pytest.raises(SettingsError, match="outbox_max_backoff_ms must be >= outbox_initial"):
        load_settings(ExampleSettings, outbox_initial_backoff_ms=5000, outbox_max_backoff_ms=100)


def test_a_keyword_is_the_variable_without_the_service_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_OUTBOX_BATCH_SIZE", "50")
    s = load_settings(ExampleSettings, outbox_poll_interval_ms=100).outbox
    assert (s.batch_size, s.poll_interval_ms) == (50, 100)


def test_a_bad_value_given_as_keyword_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="EXAMPLE_OUTBOX_BATCH_SIZE: Input should be"):
        load_settings(ExampleSettings, outbox_batch_size=0)
