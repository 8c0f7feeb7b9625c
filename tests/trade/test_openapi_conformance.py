"""The trade service answers exactly as its ``/openapi.json`` says (schemathesis).

The execution service is unreachable here, so submissions exercise their failure
answers; the trade service's own endpoints run on SQLite.
"""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.conformance import check_conformance
from tests.trade.factories import trade_settings
from tranche.trade.app import create_app


async def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("execution service down", request=request)


# Every operation gets its generated cases (about 2-3 s each with the bulk endpoint's
# arrays of up to 1000 orders); on a shared, loaded machine that outgrows the suite's
# default 120 s per test, which is a guard against hangs, not a performance claim.
@pytest.mark.timeout(300)
async def test_every_operation_conforms_to_the_spec(trade_sqlite_url: str) -> None:
    app = create_app(
        trade_settings(trade_sqlite_url, execution_service_retry_max_attempts=1),
        transport=httpx.MockTransport(_unreachable),
    )
    async with app.router.lifespan_context(app):
        failures = await check_conformance(app)
    assert not failures, "\n\n".join(f"{f.operation}: {f.error}" for f in failures)
