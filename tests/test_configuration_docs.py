"""Every setting of every service is documented in docs/configuration.md by its variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from tranche.batch.settings import BatchSettings
from tranche.core.original_names import (
    DATASOURCE_PASSWORD,
    DATASOURCE_URL,
    DATASOURCE_USERNAME,
    SpringNames,
    spring_env_names,
)
from tranche.core.outbox.settings import OutboxSettings
from tranche.core.settings import KafkaSettings, ServiceSettings, env_name
from tranche.doctoral.settings import DoctoralOutboxSettings, DoctoralSettings
from tranche.execution.settings import CallbackSettings, ExecutionOutboxSettings, ExecutionSettings
from tranche.trade.settings import ExecutionServiceRetrySettings, TradeSettings

DOC = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
SHARED = set(ServiceSettings.model_fields)
OUTBOX = set(OutboxSettings.model_fields)
SERVICES: list[type[BaseSettings]] = [ExecutionSettings, TradeSettings, DoctoralSettings]
BLOCKS: list[type[BaseSettings]] = [
    KafkaSettings,
    BatchSettings,
    ExecutionOutboxSettings,
    CallbackSettings,
    DoctoralOutboxSettings,
    ExecutionServiceRetrySettings,
]


def _is_block(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseSettings)


def _documented(cls: type[BaseSettings], name: str) -> bool:
    if f"`{env_name(cls, (name,))}`" in DOC:
        return True
    if issubclass(cls, ServiceSettings) and name in SHARED:
        return f"`<PREFIX>{name.upper()}`" in DOC
    if issubclass(cls, OutboxSettings) and name in OUTBOX:
        return f"`<PREFIX>OUTBOX_{name.upper()}`" in DOC
    return False


@pytest.mark.parametrize("cls", BLOCKS + SERVICES)
def test_every_setting_is_documented(cls: type[BaseSettings]) -> None:
    # Nested settings blocks (kafka, batch, outbox, …) are checked as classes of their own.
    names = [n for n, f in cls.model_fields.items() if not _is_block(f.annotation)]
    missing = [env_name(cls, (n,)) for n in names if not _documented(cls, n)]
    assert not missing, f"undocumented in docs/configuration.md: {missing}"


@pytest.mark.parametrize("cls", SERVICES)
def test_every_nested_block_is_checked(cls: type[BaseSettings]) -> None:
    blocks = {f.annotation for f in cls.model_fields.values() if _is_block(f.annotation)}
    assert blocks <= set(BLOCKS)


@pytest.mark.parametrize("cls", [c for c in BLOCKS + SERVICES if issubclass(c, SpringNames)])
def test_every_original_property_name_is_documented(cls: type[BaseSettings]) -> None:
    props = dict(getattr(cls, "spring_properties", {}))
    if getattr(cls, "spring_datasource", None):
        props.update(dict.fromkeys((DATASOURCE_URL, DATASOURCE_USERNAME, DATASOURCE_PASSWORD)))
    names = [env for prop in props for env in spring_env_names(prop)]
    assert names
    missing = [n for n in names if f"`{n}`" not in DOC]
    assert not missing, f"undocumented in docs/configuration.md: {missing}"
