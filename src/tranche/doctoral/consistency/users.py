"""Check 1: enrollments whose doctorant no longer exists in userdb.

inscription_db and userdb are separate servers, so each slice of enrollments
(keyset by id) is joined in memory with one ``users.id IN (…)`` query. The
owner has no suspended status (writing one its enum lacks would fail), so the
safe correction is its own flag: ``bloque_re_inscription = 1``, which stops a
re-enrollment in the name of a deleted account. An enrollment already blocked
is left alone (nothing left to correct), so a second run finds nothing. The
admins get one ``ALERTE_SYSTEME`` per run listing the enrollments blocked.
"""

from __future__ import annotations

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.core.logging import get_logger
from tranche.doctoral.consistency.anomalies import (
    TITLES,
    Anomaly,
    Check,
    is_dry_run,
    listed,
    record,
    send_notices,
)
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.tables.inscription_db import inscriptions
from tranche.doctoral.tables.userdb import users

__all__ = ["tasklet"]

log = get_logger(__name__)
CHECK = Check.MISSING_USER
INS = inscriptions


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        dry = is_dry_run(ctx)
        after = int(ctx.step_context.get("after", 0))
        query = (
            sa.select(INS.c.id, INS.c.doctorant_id, INS.c.statut, INS.c.bloque_re_inscription)
            .where(INS.c.id > after)
            .order_by(INS.c.id)
            .limit(deps.chunk_size)
        )
        async with deps.sources.inscription_db.sessions() as s:
            rows = (await s.execute(query)).all()
        if not rows:
            await _notify(ctx, deps)
            return RepeatStatus.FINISHED
        doctorants = sorted({int(r.doctorant_id) for r in rows})
        async with deps.sources.userdb.sessions() as s:
            existing = set(
                (await s.execute(sa.select(users.c.id).where(users.c.id.in_(doctorants)))).scalars()
            )
        missing = [
            r for r in rows if int(r.doctorant_id) not in existing and not r.bloque_re_inscription
        ]
        if missing and not dry:
            session = await ctx.session(deps.sources.inscription_db.engine)
            await session.execute(
                sa.update(INS)
                .where(
                    INS.c.id.in_([int(r.id) for r in missing]),
                    INS.c.bloque_re_inscription == sa.false(),
                )
                .values(bloque_re_inscription=True)
            )
        action = "Réinscription bloquée (bloque_re_inscription = 1)"
        record(
            ctx,
            (
                Anomaly(
                    CHECK,
                    f"inscription:{r.id}",
                    f"Inscription {r.id} ({r.statut}) du doctorant {r.doctorant_id}, "
                    "absent de userdb",
                    f"À faire : {action.lower()}" if dry else action,
                    corrected=not dry,
                )
                for r in missing
            ),
        )
        ctx.step_context["after"] = int(rows[-1].id)
        ctx.count(read=len(rows), write=0 if dry else len(missing), filter=len(rows) - len(missing))
        return RepeatStatus.CONTINUABLE

    return call


async def _notify(ctx: StepContext, deps: Deps) -> None:
    found = listed(ctx.job_context, CHECK)
    if not found or is_dry_run(ctx):
        return
    ids = [row["key"].split(":", 1)[1] for row in found]
    shown = ", ".join(ids[:50]) + (" …" if len(ids) > 50 else "")
    await send_notices(
        ctx,
        deps.topic,
        await deps.admins(),
        f"[Batch] {len(ids)} inscription(s) d'un doctorant absent de userdb",
        f"{TITLES[CHECK]} : la réinscription est désormais bloquée. Inscriptions : {shown}. "
        "Vérifier si le compte a été supprimé par erreur.",
        {
            "evenement": "DATA_CONSISTENCY_ANOMALY",
            "verification": CHECK.value,
            "jobName": ctx.job_execution.job_name,
            "executionId": ctx.job_execution.id,
            "inscriptionIds": [int(i) for i in ids],
        },
    )
    log.warning("consistency_missing_users", count=len(ids), inscriptions=ids[:50])
