"""The retry quartet is one model: every service's retry block has the same bounds and checks."""

from __future__ import annotations

import pytest
from pydantic_settings import BaseSettings

from tranche.core.settings import RetrySettings, SettingsError, load_settings
from tranche.doctoral.settings import DoctoralSettings
from tranche.execution.settings import ExecutionSettings
from tranche.trade.settings import TradeSettings

# (service, block field, variable prefix, variable suffixes for attempts / first / growth / cap)
BLOCKS = [
    (ExecutionSettings, "outbox", "EXECUTION_OUTBOX_", ("INITIAL_BACKOFF_MS", "MAX_BACKOFF_MS")),
    (
        ExecutionSettings,
        "callback",
        "EXECUTION_CALLBACK_",
        ("INITIAL_BACKOFF_MS", "MAX_BACKOFF_MS"),
    ),
    (DoctoralSettings, "outbox", "DOCTORAL_OUTBOX_", ("INITIAL_BACKOFF_MS", "MAX_BACKOFF_MS")),
    (
        TradeSettings,
        "execution_service_retry",
        "TRADE_EXECUTION_SERVICE_RETRY_",
        ("INITIAL_DELAY_MS", "MAX_DELAY_MS"),
    ),
]


@pytest.mark.parametrize(("service", "field", "prefix", "waits"), BLOCKS)
def test_every_retry_block_reads_its_variables(
    monkeypatch: pytest.MonkeyPatch,
    service: type[BaseSettings],
    field: str,
    prefix: str,
    waits: tuple[str, str],
) -> None:
    monkeypatch.setenv("JWT_SECRET", "x" * 32)
    monkeypatch.setenv(prefix + "MAX_ATTEMPTS", "7")
    monkeypatch.setenv(prefix + waits[0], "250")
    monkeypatch.setenv(prefix + waits[1], "4000")
    block = getattr(load_settings(service), field)
    assert isinstance(block, RetrySettings)
    assert (block.max_attempts, block.initial_backoff_ms, block.max_backoff_ms) == (7, 250, 4000)
    assert block.backoff().max_s == 4.0


@pytest.mark.parametrize(("service", "field", "prefix", "waits"), BLOCKS)
def test_every_retry_block_has_the_same_bounds(
    monkeypatch: pytest.MonkeyPatch,
    service: type[BaseSettings],
    field: str,
    prefix: str,
    waits: tuple[str, str],
) -> None:
    monkeypatch.setenv(prefix + "MAX_ATTEMPTS", "0")
    with pytest.raises(SettingsError, match=f"{prefix}MAX_ATTEMPTS: Input should be greater"):
        load_settings(service)
    monkeypatch.setenv(prefix + "MAX_ATTEMPTS", "3")
    monkeypatch.setenv(prefix + waits[0], "5000")
    monkeypatch.setenv(prefix + waits[1], "100")
    with pytest.raises(SettingsError, match=f"{waits[1].lower()} must be >= .*{waits[0].lower()}"):
        load_settings(service)


def test_blocks_keep_their_own_defaults() -> None:
    execution, trade = ExecutionSettings(), TradeSettings()
    assert (execution.outbox.max_attempts, execution.outbox.max_backoff_ms) == (3, 30_000)
    assert (execution.callback.max_attempts, execution.callback.max_backoff_ms) == (50, 300_000)
    assert trade.execution_service_retry.max_attempts == 5
