"""The doctoral admin API answers exactly as its ``/openapi.json`` says (schemathesis).

Generated requests carry an admin token, so they reach the handlers: job names, execution
ids, months, report file names and paging values that schemathesis makes up must be
refused with a documented 4xx and the documented error body, never a 5xx.
"""

from __future__ import annotations

import pytest

from tests.doctoral.factories import admin_token
from tests.doctoral.harness import Databases
from tests.doctoral.test_api import serving
from tests.fixtures.conformance import check_conformance

pytestmark = [pytest.mark.kafka]


async def test_every_operation_conforms_to_the_spec(
    sqlite_databases: Databases, kafka_bootstrap: str
) -> None:
    async with serving(sqlite_databases, kafka_bootstrap) as (app, _client):
        failures = await check_conformance(
            app, max_examples=15, headers={"Authorization": f"Bearer {admin_token()}"}
        )
    assert not failures, "\n\n".join(f"{f.operation}: {f.error}" for f in failures)
