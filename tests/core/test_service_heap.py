"""``settle_heap``: what ``tranche serve`` does to the collector before serving."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tranche.core.service import GC_YOUNG_THRESHOLD, settle_heap


@pytest.fixture
def restored_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_collector")
def test_freezes_the_heap_and_makes_young_passes_rarer() -> None:
    gc.set_threshold(700, 10, 10)
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
