from __future__ import annotations

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tranche.core.settings import ServiceSettings, SettingsError, load_settings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DEMOSVC_", extra="ignore")
    batch_size: int = Field(default=50, ge=1, le=100)
    api_secret: SecretStr = SecretStr("x")


def test_defaults_load_without_environment() -> None:
    s = load_settings(DemoSettings)
    assert s.batch_size == 50
    assert s.pool().pool_size == 10
    assert s.kafka.bootstrap_servers is None


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMOSVC_BATCH_SIZE", "7")
    monkeypatch.setenv("DEMOSVC_DB_POOL_SIZE", "3")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    s = load_settings(DemoSettings)
    assert (s.batch_size, s.pool().pool_size, s.kafka.bootstrap_servers) == (7, 3, "127.0.0.1:1")


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMOSVC_BATCH_SIZE", "1000")
    with pytest.raises(
        SettingsError, match="DEMOSVC_BATCH_SIZE: Input should be less than or equal to 100"
    ):
        load_settings(DemoSettings)


def test_bad_kafka_value_names_the_kafka_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_REQUEST_TIMEOUT_MS", "abc")
    with pytest.raises(SettingsError, match="KAFKA_REQUEST_TIMEOUT_MS"):
        load_settings(DemoSettings)


def test_secret_values_are_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMOSVC_API_SECRET", "")
    monkeypatch.setenv("DEMOSVC_BATCH_SIZE", "zero")

    class Strict(DemoSettings):
        api_secret: SecretStr = Field(default=SecretStr("x"), min_length=20)

    with pytest.raises(SettingsError) as info:
        load_settings(Strict, api_secret="short-secret-value")
    assert "DEMOSVC_API_SECRET" in str(info.value)
    assert "short-secret-value" not in str(info.value)
    assert "'zero'" in str(info.value)
