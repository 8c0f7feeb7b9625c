"""The broker circuit's open period and aiokafka's log volume, on injected clocks."""

from __future__ import annotations

import logging

import pytest

from tranche.core.outbox.publisher import Publisher, RepeatedLogFilter
from tranche.core.resilience import BreakerState, CircuitBreaker
from tranche.core.settings import KafkaSettings


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _open(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure("down")
    assert breaker.state is BreakerState.OPEN


def test_open_period_doubles_per_failed_probe_up_to_the_reset() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(3, reset_s=60.0, clock=clock, first_open_s=1.0)
    _open(breaker)
    periods = []
    for _ in range(9):
        periods.append(breaker.open_s)
        opened = clock.now
        clock.now = opened + breaker.open_s - 0.25
        assert not breaker.allow()  # still open just before the period ends
        clock.now = opened + breaker.open_s
        assert breaker.allow()  # the one half-open probe
        assert not breaker.allow()
        breaker.record_failure("still down")
    assert periods == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_a_success_closes_and_the_next_outage_starts_short_again() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(2, reset_s=60.0, clock=clock, first_open_s=1.0)
    _open(breaker)
    clock.now += 1
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.open_s == 2
    clock.now += 2
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    _open(breaker)
    assert breaker.open_s == 1


def test_without_a_first_open_period_the_breaker_waits_the_reset_each_time() -> None:
    clock = _Clock()
    breaker = CircuitBreaker(1, reset_s=30.0, clock=clock)
    _open(breaker)
    assert breaker.open_s == 30
    clock.now += 30
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.open_s == 30


def test_first_open_period_beyond_the_reset_is_refused() -> None:
    with pytest.raises(ValueError, match="first_open_s"):
        CircuitBreaker(1, reset_s=1.0, first_open_s=2.0)


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", logging.ERROR, __file__, 1, msg, args, None)


def test_repeated_log_lines_pass_once_per_window_and_count_what_was_held() -> None:
    clock = _Clock()
    repeated = RepeatedLogFilter(window_s=10.0, clock=clock)
    passed = []
    for tick in range(250):  # 25 a second for 10 s, as aiokafka logs with the broker gone
        clock.now = tick * 0.04
        record = _record("Unable connect to node with id %s: %s", 1, "refused")
        if repeated.filter(record):
            passed.append(record)
    clock.now = 10.0
    last = _record("Unable connect to node with id %s: %s", 1, "refused")
    assert repeated.filter(last)
    assert len(passed) == 1
    assert "249 similar lines held back" in last.getMessage()
    assert repeated.filter(_record("Unable to update metadata from %s", [1]))


def test_every_aiokafka_logger_carries_the_filter() -> None:
    Publisher(KafkaSettings(bootstrap_servers="127.0.0.1:1"), 1_000_000)
    names = [n for n in logging.root.manager.loggerDict if n.startswith("aiokafka")]
    assert "aiokafka.producer.sender" in names
    for name in names:
        assert any(isinstance(f, RepeatedLogFilter) for f in logging.getLogger(name).filters)
