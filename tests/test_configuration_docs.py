"""Every setting of every service is documented in docs/configuration.md by its variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from tranche.batch.settings import BatchSettings
from tranche.core.outbox.settings import OutboxSettingsMixin
from tranche.core.settings import KafkaSettings, ServiceSettings, env_name
from tranche.doctoral.settings import DoctoralSettings
from tranche.execution.settings import ExecutionSettings
from tranche.trade.settings import TradeSettings

DOC = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
SHARED = set(ServiceSettings.model_fields) | set(OutboxSettingsMixin.model_fields)


def _documented(cls: type[BaseSettings], name: str) -> bool:
    if f"`{env_name(cls, (name,))}`" in DOC:
        return True
    return name in SHARED and f"`<PREFIX>{name.upper()}`" in DOC


@pytest.mark.parametrize(
    "cls", [KafkaSettings, BatchSettings, ExecutionSettings, TradeSettings, DoctoralSettings]
)
def test_every_setting_is_documented(cls: type[BaseSettings]) -> None:
    # Nested settings blocks (kafka, batch) are documented under their own prefix.
    names = [
        n
        for n, f in cls.model_fields.items()
        if not (isinstance(f.annotation, type) and issubclass(f.annotation, BaseSettings))
    ]
    missing = [env_name(cls, (n,)) for n in names if not _documented(cls, n)]
    assert not missing, f"undocumented in docs/configuration.md: {missing}"
