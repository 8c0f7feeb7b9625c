"""Check 3: the doctorants' roles agree with their enrollment and their defense.

Two passes, each keyset-paged by doctorant id and joined in memory:

* **active**: doctorants with a VALIDE enrollment (inscription_db) and no
  completed defense (defensedb) hold ``ROLE_DOCTORANT_ACTIF`` — added if missing;
* **doctors**: doctorants whose defense is COMPLETED (the request's or the
  defense's status) lose ``ROLE_DOCTORANT_ACTIF`` and get ``ROLE_DOCTEUR`` when
  the roles table has it. The owner's enum has no such role (reference §2),
  and inserting it would fail; then the missing role is an anomaly for a
  person, reported once per doctor (the ledger).

Each change is written as user-service writes it: the ``user_roles`` row and a
``user_audits`` row (``ROLE_ASSIGNED`` / ``ROLE_REMOVED``). Doctorants absent
from userdb are check 1's business and are skipped here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus, Tasklet
from tranche.batch.uow import StepContext
from tranche.doctoral.consistency.anomalies import (
    Anomaly,
    Check,
    forget_resolved,
    is_dry_run,
    record,
    unreported,
)
from tranche.doctoral.consistency.base import Deps
from tranche.doctoral.models import utc_naive
from tranche.doctoral.tables.defensedb import defense_requests, defenses
from tranche.doctoral.tables.inscription_db import inscriptions
from tranche.doctoral.tables.userdb import roles, user_audits, user_roles, users

__all__ = ["ACTIF", "DOCTEUR", "completed_doctorants", "tasklet"]

CHECK = Check.ROLES
ACTIF = "ROLE_DOCTORANT_ACTIF"
DOCTEUR = "ROLE_DOCTEUR"
DR = defense_requests
_PASSES = ("active", "doctors")


def _completed_clause() -> sa.ColumnElement[bool]:
    return sa.or_(DR.c.status == "COMPLETED", defenses.c.status == "COMPLETED")


def completed_doctorants(ids: list[int] | None = None) -> sa.Select[Any]:
    """Doctorants with a completed defense (all, or those among ``ids``)."""
    query = (
        sa.select(DR.c.doctorant_id)
        .select_from(DR.outerjoin(defenses, defenses.c.defense_request_id == DR.c.id))
        .where(DR.c.doctorant_id.is_not(None), _completed_clause())
        .distinct()
    )
    return query if ids is None else query.where(DR.c.doctorant_id.in_(ids))


async def _page(deps: Deps, phase: str, after: int) -> list[int]:
    if phase == "active":
        ins = inscriptions
        query = (
            sa.select(ins.c.doctorant_id)
            .where(ins.c.statut == "VALIDE", ins.c.doctorant_id > after)
            .group_by(ins.c.doctorant_id)
            .order_by(ins.c.doctorant_id)
            .limit(deps.chunk_size)
        )
        db = deps.sources.inscription_db
    else:
        query = (
            completed_doctorants()
            .where(DR.c.doctorant_id > after)
            .order_by(DR.c.doctorant_id)
            .limit(deps.chunk_size)
        )
        db = deps.sources.defensedb
    async with db.sessions() as s:
        return [int(v) for v in (await s.execute(query)).scalars()]


async def _roles_of(deps: Deps, ids: list[int]) -> tuple[dict[str, int], dict[int, set[str]]]:
    """The role ids by name, and the roles of those of ``ids`` who exist in userdb."""
    # Read as plain text: an owner that added a role (ROLE_DOCTEUR) must not break the read.
    name = sa.type_coerce(roles.c.name, sa.String())
    async with deps.sources.userdb.sessions() as s:
        by_name = {str(n): int(i) for n, i in (await s.execute(sa.select(name, roles.c.id))).all()}
        existing = set(
            (await s.execute(sa.select(users.c.id).where(users.c.id.in_(ids)))).scalars()
        )
        held: dict[int, set[str]] = {int(u): set() for u in existing}
        rows = await s.execute(
            sa.select(user_roles.c.user_id, name)
            .join(roles, roles.c.id == user_roles.c.role_id)
            .where(user_roles.c.user_id.in_(sorted(existing)))
        )
        for user_id, role in rows.all():
            held.setdefault(int(user_id), set()).add(str(role))
    return by_name, held


def _audit(user_id: int, action: str, role: str, job: str, now: datetime) -> dict[str, Any]:
    verb = "assigned" if action == "ROLE_ASSIGNED" else "removed"
    return {
        "user_id": user_id,
        "action": action,
        "timestamp": now,
        "ip_address": None,
        "details": f"Role {role} {verb} by batch-service ({job})",
    }


def tasklet(deps: Deps) -> Tasklet:
    async def call(ctx: StepContext) -> RepeatStatus:
        dry = is_dry_run(ctx)
        phase = str(ctx.step_context.get("phase", _PASSES[0]))
        after = int(ctx.step_context.get("after", 0))
        ids = await _page(deps, phase, after)
        if not ids:
            if phase == _PASSES[-1]:
                await forget_resolved(ctx, CHECK)
                return RepeatStatus.FINISHED
            ctx.step_context["phase"], ctx.step_context["after"] = _PASSES[1], 0
            return RepeatStatus.CONTINUABLE
        by_name, held = await _roles_of(deps, ids)
        grants: list[tuple[int, str]] = []
        removals: list[tuple[int, str]] = []
        manual: list[Anomaly] = []
        if phase == "active":
            async with deps.sources.defensedb.sessions() as s:
                done = set((await s.execute(completed_doctorants(ids))).scalars())
            grants = [
                (u, ACTIF) for u in ids if u in held and u not in done and ACTIF not in held[u]
            ]
        else:
            for u in ids:
                if u not in held:
                    continue
                if ACTIF in held[u]:
                    removals.append((u, ACTIF))
                if DOCTEUR in by_name:
                    if DOCTEUR not in held[u]:
                        grants.append((u, DOCTEUR))
                else:
                    manual.append(
                        Anomaly(
                            CHECK,
                            f"docteur:{u}",
                            f"Doctorant {u} : soutenance terminée, rôle {DOCTEUR} absent de la "
                            "table roles",
                            f"Intervention requise : créer {DOCTEUR} dans userdb (user-service), "
                            "le prochain passage l'attribuera",
                            corrected=False,
                        )
                    )
        if (grants or removals) and not dry:
            await _apply(ctx, deps, by_name, grants, removals)
        prefix = "À faire : " if dry else ""
        record(
            ctx,
            [
                Anomaly(
                    CHECK,
                    f"{role}:{u}",
                    f"Doctorant {u} sans {role}"
                    + (
                        " (inscription VALIDE, pas de soutenance terminée)" if role == ACTIF else ""
                    ),
                    f"{prefix}rôle {role} attribué (ROLE_ASSIGNED)",
                    corrected=not dry,
                )
                for u, role in grants
            ]
            + [
                Anomaly(
                    CHECK,
                    f"-{role}:{u}",
                    f"Doctorant {u} : soutenance terminée mais toujours {role}",
                    f"{prefix}rôle {role} retiré (ROLE_REMOVED)",
                    corrected=not dry,
                )
                for u, role in removals
            ]
            + await unreported(ctx, CHECK, manual),
        )
        ctx.step_context["after"] = ids[-1]
        ctx.count(read=len(ids), write=0 if dry else len(grants) + len(removals))
        return RepeatStatus.CONTINUABLE

    return call


async def _apply(
    ctx: StepContext,
    deps: Deps,
    by_name: dict[str, int],
    grants: list[tuple[int, str]],
    removals: list[tuple[int, str]],
) -> None:
    session = await ctx.session(deps.sources.userdb.engine)
    now = utc_naive(datetime.now(UTC))
    job = ctx.job_execution.job_name
    audits = []
    if grants:
        await session.execute(
            sa.insert(user_roles), [{"user_id": u, "role_id": by_name[r]} for u, r in grants]
        )
        audits += [_audit(u, "ROLE_ASSIGNED", r, job, now) for u, r in grants]
    for u, r in removals:
        await session.execute(
            sa.delete(user_roles).where(
                user_roles.c.user_id == u, user_roles.c.role_id == by_name[r]
            )
        )
        audits.append(_audit(u, "ROLE_REMOVED", r, job, now))
    await session.execute(sa.insert(user_audits), audits)
