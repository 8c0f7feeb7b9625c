"""Roles after a defense when userdb does have ROLE_DOCTEUR (an owner that added it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry

from tests.doctoral.consistency_world import RUN, defense_request, fresh, grant
from tests.doctoral.factories import Portal
from tests.doctoral.harness import Databases
from tranche.batch import BatchStatus
from tranche.doctoral.runtime import Runtime
from tranche.doctoral.tables import userdb as U

__all__ = ["fresh"]

ROLES = (*U.ROLE_NAMES, "ROLE_DOCTEUR")


@pytest.fixture
async def runtime(fresh: Databases, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = Runtime.build(
        fresh.settings(uploads_dir=tmp_path / "uploads", reports_dir=tmp_path / "reports"),
        CollectorRegistry(),
    )
    # The owner widened its enum with ROLE_DOCTEUR (SQLite: the CHECK constraint goes).
    async with rt.sources.userdb.transaction() as s:
        if fresh.kind == "mariadb":
            listed = ", ".join(f"'{r}'" for r in ROLES)
            await s.execute(sa.text(f"ALTER TABLE roles MODIFY name enum({listed}) NOT NULL"))
        else:
            await s.execute(sa.text("DROP TABLE roles"))
            await s.execute(
                sa.text(
                    "CREATE TABLE roles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "name VARCHAR(30) NOT NULL UNIQUE)"
                )
            )
        for name in ROLES:
            await s.execute(sa.text("INSERT INTO roles (name) VALUES (:n)"), {"n": name})
    try:
        yield rt
    finally:
        await rt.close()


async def _roles(rt: Runtime, user: int) -> set[str]:
    async with rt.sources.userdb.sessions() as s:
        rows = await s.execute(
            sa.select(sa.type_coerce(U.roles.c.name, sa.String()))
            .join(U.user_roles, U.user_roles.c.role_id == U.roles.c.id)
            .where(U.user_roles.c.user_id == user)
        )
        return set(rows.scalars())


async def test_a_doctor_loses_the_active_role_and_gets_docteur(runtime: Runtime) -> None:
    portal = Portal(runtime.sources.userdb, runtime.sources.inscription_db)
    director = await portal.user("ROLE_DIRECTEUR")
    doctor = await portal.user()
    await grant(runtime.sources.userdb, doctor, "ROLE_DOCTORANT_ACTIF")
    await portal.enrollment(doctor, director, datetime(2020, 10, 1))
    # The defense is COMPLETED though the request still says SCHEDULED.
    await defense_request(runtime.sources.defensedb, doctor, "SCHEDULED", director, "COMPLETED")

    job = runtime.spec("dataConsistencyJob").job
    first = await runtime.launcher.run(job, runtime.parameters("pytest", at=RUN))
    assert first.status is BatchStatus.COMPLETED, first.exit_status
    assert await _roles(runtime, doctor) == {"ROLE_DOCTORANT", "ROLE_DOCTEUR"}
    counts = first.context["counts"]
    assert counts["anomalies.roles.corrected"] == 2
    assert "anomalies.roles.manual" not in counts
    async with runtime.sources.userdb.sessions() as s:
        audits = (
            await s.execute(
                sa.select(U.user_audits.c.action, U.user_audits.c.details).where(
                    U.user_audits.c.user_id == doctor
                )
            )
        ).all()
    assert sorted((a, "ROLE_DOCTEUR" in d) for a, d in audits) == [
        ("ROLE_ASSIGNED", True),
        ("ROLE_REMOVED", False),
    ]

    second = await runtime.launcher.run(
        job, runtime.parameters("pytest", at=RUN.replace(hour=23, minute=30))
    )
    assert not any(k.startswith("anomalies.") for k in second.context["counts"])
