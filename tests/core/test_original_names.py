"""The originals' Spring property names (relaxed binding) configure tranche's services."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from tranche.core.original_names import SpringNames, jdbc_to_sqlalchemy, spring_env_names
from tranche.core.settings import KafkaSettings, SettingsError, load_settings
from tranche.execution.settings import ExecutionOutboxSettings, ExecutionSettings
from tranche.trade.settings import ExecutionServiceRetrySettings, TradeSettings

CLASSES: list[type[BaseSettings]] = [
    KafkaSettings,
    ExecutionSettings,
    ExecutionOutboxSettings,
    TradeSettings,
    ExecutionServiceRetrySettings,
]
ALIASES = [
    (cls, prop, field, env)
    for cls in CLASSES
    for prop, field in getattr(cls, "spring_properties", {}).items()
    for env in spring_env_names(prop)
]


def _value(cls: type[BaseSettings], field: str, n: int) -> tuple[str, Any]:
    """Valid value number ``n`` (1, 2) for ``field``, not its default unless a bool's n=2:
    (as set in the environment, as parsed)."""
    default = cls.model_fields[field].default
    if isinstance(default, bool):
        value: Any = not default if n == 1 else default
        return str(value).lower(), value
    if isinstance(default, int) or (default is None and field.endswith(("_inserts", "_size"))):
        value = 2 + n if default is None else default + n
        return str(value), value
    if isinstance(default, float):
        return str(default + 1.5 * n), default + 1.5 * n
    if field == "host":
        return f"10.0.0.{n}", f"10.0.0.{n}"
    if field == "orders_topic":
        return f"orders-{n}", f"orders-{n}"
    return f"http://host-{n}.example:9999", f"http://host-{n}.example:9999"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No tranche or Spring variable of the developer's shell leaks in."""
    prefixes = ("EXECUTION_", "TRADE_", "KAFKA_", "SPRING_", "BATCH_", "SERVER_", "SECURITY_")
    for name in list(os.environ):
        if name.upper().startswith(prefixes):
            monkeypatch.delenv(name)


def test_every_class_that_declares_aliases_reads_them() -> None:
    assert all(issubclass(cls, SpringNames) for cls in CLASSES)
    assert len(ALIASES) > 30


@pytest.mark.parametrize(
    ("cls", "prop", "field", "env"), ALIASES, ids=[f"{a[0].__name__}-{a[3]}" for a in ALIASES]
)
def test_a_spring_variable_sets_its_setting(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], prop: str, field: str, env: str
) -> None:
    raw, parsed = _value(cls, field, 1)
    monkeypatch.setenv(env, raw)
    assert getattr(load_settings(cls), field) == parsed


@pytest.mark.parametrize(
    ("cls", "prop", "field", "env"), ALIASES, ids=[f"{a[0].__name__}-{a[3]}" for a in ALIASES]
)
def test_tranche_own_variable_wins(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], prop: str, field: str, env: str
) -> None:
    monkeypatch.setenv(env, _value(cls, field, 1)[0])
    own, expected = _value(cls, field, 2)
    monkeypatch.setenv(str(cls.model_config.get("env_prefix", "")) + field.upper(), own)
    assert getattr(load_settings(cls), field) == expected


def test_the_services_see_the_aliases_of_their_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRING_KAFKA_BOOTSTRAP_SERVERS", "kafka-a:9092,kafka-b:9092")
    monkeypatch.setenv("BATCH_EXECUTION_KAFKA_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("EXECUTION_SERVICE_RETRY_MAXATTEMPTS", "9")
    execution, trade = load_settings(ExecutionSettings), load_settings(TradeSettings)
    assert execution.kafka.bootstrap_servers == "kafka-a:9092,kafka-b:9092"
    assert execution.outbox.max_attempts == 7
    assert trade.execution_service_retry.max_attempts == 9
    assert trade.kafka.bootstrap_servers == "kafka-a:9092,kafka-b:9092"


@pytest.mark.parametrize("cls", [ExecutionSettings, TradeSettings])
def test_the_jdbc_datasource_becomes_an_asyncpg_url(
    monkeypatch: pytest.MonkeyPatch, cls: type[ExecutionSettings] | type[TradeSettings]
) -> None:
    monkeypatch.setenv(
        "SPRING_DATASOURCE_URL", "jdbc:postgresql://globeco-db:5432/postgres?sslmode=require"
    )
    monkeypatch.setenv("SPRING_DATASOURCE_USERNAME", "globeco")
    monkeypatch.setenv("SPRING_DATASOURCE_PASSWORD", "s3cr@t/:?#")
    url = make_url(load_settings(cls).database_url or "")
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database) == ("globeco-db", 5432, "postgres")
    assert (url.username, url.password) == ("globeco", "s3cr@t/:?#")
    assert dict(url.query) == {"ssl": "require"}


def test_the_originals_empty_password_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRING_DATASOURCE_URL", "jdbc:postgresql://db/postgres")
    monkeypatch.setenv("SPRING_DATASOURCE_USERNAME", "postgres")
    monkeypatch.setenv("SPRING_DATASOURCE_PASSWORD", "")
    url = make_url(load_settings(ExecutionSettings).database_url or "")
    assert (url.username, url.password, url.port) == ("postgres", None, None)


def test_tranche_database_url_wins_and_the_spring_one_is_not_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPRING_DATASOURCE_URL", "not a jdbc url")
    monkeypatch.setenv("EXECUTION_DATABASE_URL", "postgresql+asyncpg://own@h/db")
    assert load_settings(ExecutionSettings).database_url == "postgresql+asyncpg://own@h/db"


@pytest.mark.parametrize(
    ("jdbc", "why"),
    [
        ("jdbc:mysql://db:3306/x", "PostgreSQL JDBC URL"),
        ("postgresql://db/x", "PostgreSQL JDBC URL"),
        ("jdbc:postgresql:postgres", "needs a host"),
        ("jdbc:postgresql://a:5432,b:5432/x", "several hosts"),
        ("jdbc:postgresql://db:port/x", "port is not a number"),
        ("jdbc:postgresql://db/x?currentSchema=s&password=hunter2", "currentSchema"),
    ],
)
def test_a_bad_jdbc_url_is_refused_by_name_without_the_password(
    monkeypatch: pytest.MonkeyPatch, jdbc: str, why: str
) -> None:
    monkeypatch.setenv("SPRING_DATASOURCE_URL", jdbc)
    monkeypatch.setenv("SPRING_DATASOURCE_PASSWORD", "hunter2")
    with pytest.raises(SettingsError) as err:
        load_settings(TradeSettings)
    assert "SPRING_DATASOURCE_URL" in str(err.value)
    assert why in str(err.value)
    assert "hunter2" not in str(err.value)


def test_credentials_in_the_jdbc_query_are_used_when_not_given_apart() -> None:
    url = make_url(jdbc_to_sqlalchemy("jdbc:postgresql://db/x?user=u&password=p", None, None))
    assert (url.username, url.password) == ("u", "p")
    url = make_url(jdbc_to_sqlalchemy("jdbc:postgresql://db/x?user=u&password=p", "v", "q"))
    assert (url.username, url.password) == ("v", "q")


@given(
    user=st.text(min_size=1).filter(lambda s: "\x00" not in s),
    password=st.text(min_size=1).filter(lambda s: "\x00" not in s),
    database=st.from_regex(r"[A-Za-z0-9_\-]{1,20}", fullmatch=True),
)
def test_any_credentials_survive_the_conversion(user: str, password: str, database: str) -> None:
    url = make_url(jdbc_to_sqlalchemy(f"jdbc:postgresql://db:6543/{database}", user, password))
    assert (url.username, url.password, url.database, url.port) == (user, password, database, 6543)
