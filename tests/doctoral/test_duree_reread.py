"""The owner's alerts are re-read inside each chunk's transaction, on every enrollment.

The reader's page is read before its chunks are written; the owner (inscription-service,
or an administrator) may record an alert meanwhile, on any of the doctorant's
enrollments. The chunk's re-read finds it by the enrollments' ids: the job then adds no
second row of that type and applies no block (the owner's row says it is applied), and
the reminders, which are the batch's own ledger's business, still go out once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from tests.doctoral.harness import Running
from tranche.batch import BatchListener, BatchStatus, StepContext
from tranche.core.db import Database
from tranche.doctoral.jobs.common import counts_of
from tranche.doctoral.tables import inscription_db as I

RUN = datetime(2025, 3, 17, 8, 0, tzinfo=UTC)


def years_ago(years: float) -> datetime:
    return datetime.combine(
        RUN.date() - timedelta(days=int(years * 365.25) + 1), datetime.min.time()
    ) + timedelta(hours=9)


class OwnerRecordsMeanwhile(BatchListener):
    """Before the first chunk is written (its page already read), the owner records a
    DEPASSE_6_ANS alert on the doctorant's older enrollment."""

    def __init__(self) -> None:
        self.inscription_db: Database | None = None
        self.on: int | None = None

    async def before_chunk(self, ctx: StepContext) -> None:
        if self.on is None or ctx.step_execution.step_name != "checkDureeDoctoratStep":
            return
        assert self.inscription_db is not None
        async with self.inscription_db.transaction() as s:
            await s.execute(
                sa.insert(I.alertes_duree).values(
                    inscription_id=self.on,
                    type="DEPASSE_6_ANS",
                    date_alerte=datetime(2025, 3, 17, 8, 0),
                    traite=False,
                    action="enregistrée par inscription-service",
                )
            )
        self.on = None


async def test_an_alert_the_owner_records_meanwhile_is_found_on_any_enrollment(
    make_runtime: Any,
) -> None:
    meanwhile = OwnerRecordsMeanwhile()
    running: Running = await make_runtime(listeners=[meanwhile])
    portal, runtime = running.portal, running.runtime
    meanwhile.inscription_db = runtime.sources.inscription_db
    director = await portal.user("ROLE_DIRECTEUR")
    doc = await portal.user()
    older = await portal.enrollment(doc, director, years_ago(6.4))
    current = await portal.enrollment(doc, director, years_ago(6.4))
    meanwhile.on = older

    spec = runtime.spec("dureeDoctoratAlertJob")
    execution = await runtime.launcher.run(spec.job, runtime.parameters("pytest", at=RUN))
    assert execution.status is BatchStatus.COMPLETED, execution.exit_status
    assert meanwhile.on is None  # the owner's row went in between the page and the chunk

    async with runtime.sources.inscription_db.sessions() as s:
        rows = (
            await s.execute(
                sa.select(I.alertes_duree.c.inscription_id, I.alertes_duree.c.type).where(
                    I.alertes_duree.c.inscription_id.in_([older, current])
                )
            )
        ).all()
        flags = dict(
            (
                await s.execute(
                    sa.select(I.inscriptions.c.id, I.inscriptions.c.bloque_re_inscription).where(
                        I.inscriptions.c.id.in_([older, current])
                    )
                )
            ).all()
        )
    assert [tuple(r) for r in rows] == [(older, "DEPASSE_6_ANS")]  # the owner's, alone
    assert not any(flags.values())  # no block: the owner's row says it is applied
    counts = counts_of(execution)
    assert counts.get("alertesEnregistrees", 0) == 0
    assert counts["alertes.DEPASSE_6_ANS"] == 1 and counts["notifications"] == 2
