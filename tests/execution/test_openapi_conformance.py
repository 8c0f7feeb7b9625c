"""The execution service answers exactly as its ``/openapi.json`` says (schemathesis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.execution.harness import running
from tests.fixtures.conformance import check_conformance
from tranche.core.broker import EmbeddedBroker

pytestmark = [pytest.mark.kafka]


async def test_every_operation_conforms_to_the_spec(broker: EmbeddedBroker, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'execution.db'}"
    async with running(url, broker.bootstrap_servers, tmp_path) as app:
        failures = await check_conformance(app.app)
    assert not failures, "\n\n".join(f"{f.operation}: {f.error}" for f in failures)
