"""Creating, changing and deleting blotters, trade types, execution statuses and
destinations, version-checked; a code in use is not deleted (PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest

from tests.trade.factories import create_executions

pytestmark = pytest.mark.postgres

CODES = [
    ("blotters", "blotters", "name"),
    ("tradeTypes", "tradeType", "description"),
    ("executionStatuses", "executionStatuses", "description"),
    ("destinations", "destinations", "description"),
]


@pytest.mark.parametrize(("plural", "single", "text"), CODES)
async def test_create_change_delete(
    api: httpx.AsyncClient, plural: str, single: str, text: str
) -> None:
    created = await api.post(f"/api/v1/{plural}", json={"abbreviation": "ZZ", text: "Zed"})
    assert created.status_code == 201, created.text
    row = created.json()
    assert (row["abbreviation"], row[text], row["version"]) == ("ZZ", "Zed", 1)
    path = f"/api/v1/{single}/{row['id']}"
    assert (await api.get(path)).json() == row
    changed = await api.put(path, json={"abbreviation": "ZY", text: "Zee", "version": 1})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    stale = await api.put(path, json={"abbreviation": "ZX", text: "Zoo", "version": 1})
    assert stale.status_code == 409
    assert (await api.delete(path, params={"version": 1})).status_code == 409
    assert (await api.delete(path, params={"version": 2})).status_code == 204
    assert (await api.get(path)).status_code == 404
    assert (
        await api.put(path, json={"abbreviation": "Q", text: "Q", "version": 2})
    ).status_code == 404


@pytest.mark.parametrize(("plural", "single", "text"), CODES)
async def test_bad_bodies_are_400_naming_the_field(
    api: httpx.AsyncClient, plural: str, single: str, text: str
) -> None:
    for body, field in (
        ({text: "x"}, "abbreviation"),
        ({"abbreviation": "A", text: ""}, text),
        ({"abbreviation": "A" * 21, text: "x"}, "abbreviation"),
    ):
        r = await api.post(f"/api/v1/{plural}", json=body)
        assert r.status_code == 400, r.text
        assert field in r.json()["validationErrors"]


async def test_a_trade_type_abbreviation_fits_its_column(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/v1/tradeTypes", json={"abbreviation": "A" * 11, "description": "x"})
    assert r.status_code == 400
    assert "abbreviation" in r.json()["validationErrors"]


async def test_codes_in_use_are_not_deleted(api: httpx.AsyncClient) -> None:
    await create_executions(api, 1)  # uses blotter 2, trade type 1, status 1, destination 1
    for path in (
        "/api/v1/blotters/2",
        "/api/v1/tradeType/1",
        "/api/v1/executionStatuses/1",
        "/api/v1/destinations/1",
    ):
        version = (await api.get(path)).json()["version"]
        r = await api.delete(path, params={"version": version})
        assert r.status_code == 409, (path, r.text)
        assert "in use" in r.json()["message"]
