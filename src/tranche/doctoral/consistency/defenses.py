"""Check 2: defense requests under way whose doctorant has no validated enrollment.

defensedb knows no enrollment (reference §4): a request is linked to
inscription_db only by ``doctorant_id``. Each slice of requests that are past
DRAFT and not REJECTED (keyset by id) is joined in memory with the doctorants
holding a VALIDE enrollment. The original "blocked" the request with a status
the owner's enum lacks; nothing here is safe to change automatically, so the
anomaly needs a person: the admins and the thesis director (``juries.director_id``,
when a jury exists) are told, once (the ledger), and nothing is written to defensedb.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.doctoral.consistency.anomalies import (
    TITLES,
    Anomaly,
    Check,
    forget_resolved,
    is_dry_run,
    listed,
    record,
    send_notices,
    unreported,
)
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.tables.defensedb import defense_requests, juries
from tranche.doctoral.tables.inscription_db import inscriptions
from tranche.doctoral.tables.userdb import users

__all__ = ["tasklet"]

CHECK = Check.DEFENSE_WITHOUT_ENROLLMENT
DR = defense_requests
ACTION = (
    "Intervention requise : vérifier l'inscription du doctorant (aucune inscription VALIDE) "
    "avant de poursuivre la soutenance"
)


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        after = int(ctx.step_context.get("after", 0))
        query = (
            sa.select(DR.c.id, DR.c.doctorant_id, DR.c.status, juries.c.director_id)
            .select_from(DR.outerjoin(juries, juries.c.defense_request_id == DR.c.id))
            .where(DR.c.id > after, DR.c.status.not_in(("DRAFT", "REJECTED")))
            .order_by(DR.c.id)
            .limit(deps.chunk_size)
        )
        async with deps.sources.defensedb.sessions() as s:
            rows = (await s.execute(query)).all()
        if not rows:
            await forget_resolved(ctx, CHECK)
            await _notify(ctx, deps)
            return RepeatStatus.FINISHED
        doctorants = sorted({int(r.doctorant_id) for r in rows if r.doctorant_id is not None})
        valid: set[int] = set()
        if doctorants:
            async with deps.sources.inscription_db.sessions() as s:
                valid = set(
                    (
                        await s.execute(
                            sa.select(inscriptions.c.doctorant_id)
                            .where(
                                inscriptions.c.doctorant_id.in_(doctorants),
                                inscriptions.c.statut == "VALIDE",
                            )
                            .distinct()
                        )
                    ).scalars()
                )
        bad = [r for r in rows if r.doctorant_id is None or int(r.doctorant_id) not in valid]
        found = [
            Anomaly(
                CHECK,
                f"defense_request:{r.id}",
                f"Demande de soutenance {r.id} ({r.status}) du doctorant {r.doctorant_id}"
                + (f", directeur {r.director_id}" if r.director_id is not None else ", sans jury"),
                ACTION,
                corrected=False,
            )
            for r in bad
        ]
        new = await unreported(ctx, CHECK, found)
        record(ctx, new)
        directors = dict(ctx.step_context.get("directors", {}))
        new_keys = {a.key for a in new}
        for r in bad:
            if r.director_id is not None and f"defense_request:{r.id}" in new_keys:
                directors[str(r.director_id)] = [*directors.get(str(r.director_id), []), int(r.id)]
        ctx.step_context["directors"] = directors
        ctx.step_context["after"] = int(rows[-1].id)
        ctx.count(read=len(rows), filter=len(rows) - len(new))
        return RepeatStatus.CONTINUABLE

    return call


async def _notify(ctx: StepContext, deps: Deps) -> None:
    found = listed(ctx.job_context, CHECK)
    if not found or is_dry_run(ctx):
        return
    ids = [int(row["key"].split(":", 1)[1]) for row in found]
    base = {
        "evenement": "DATA_CONSISTENCY_ANOMALY",
        "verification": CHECK.value,
        "jobName": ctx.job_execution.job_name,
        "executionId": ctx.job_execution.id,
    }
    shown = ", ".join(str(i) for i in ids[:50]) + (" …" if len(ids) > 50 else "")
    await send_notices(
        ctx,
        deps.topic,
        await deps.admins(),
        f"[Batch] {len(ids)} demande(s) de soutenance sans inscription validée",
        f"{TITLES[CHECK]}. Demandes : {shown}. {ACTION}.",
        {**base, "defenseRequestIds": ids},
    )
    by_director: dict[int, list[int]] = defaultdict(list)
    for director, requests in dict(ctx.step_context.get("directors", {})).items():
        by_director[int(director)].extend(int(r) for r in requests)
    if not by_director:
        return
    async with deps.sources.userdb.sessions() as s:
        emails = dict(
            (
                await s.execute(
                    sa.select(users.c.id, users.c.email).where(users.c.id.in_(sorted(by_director)))
                )
            ).all()
        )
    for director, requests in sorted(by_director.items()):
        email = emails.get(director)
        if email is None:
            continue
        listing = ", ".join(str(r) for r in requests)
        await send_notices(
            ctx,
            deps.topic,
            [str(email)],
            "Demande de soutenance : inscription du doctorant à vérifier",
            f"La ou les demandes de soutenance {listing} concernent un doctorant sans "
            "inscription validée. Merci de vérifier la situation avec l'administration.",
            {**base, "defenseRequestIds": requests, "destinataireRole": "DIRECTEUR_THESE"},
        )
