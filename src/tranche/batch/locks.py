"""The job lock and the fire lock, claimed inside the caller's transaction.

*Job lock*: a ``batch_job_lock`` row keyed by job name is the right to run that job. It is
inserted in the same transaction that creates the job execution and deleted in the one that
records its end, so "one running execution per job" holds across processes. The running
process renews ``renewed_at`` (a heartbeat, and inside every chunk commit); a process that
crashed stops renewing, and once ``renewed_at`` is older than the stale threshold the next
claimant takes the row over and marks the dead execution FAILED, so it can be restarted.
A process that finds its lock taken over cannot commit another chunk (:class:`LockLostError`).

*Fire lock*: a ``batch_fire_lock`` row keyed by (job name, fire time); of several replicas
firing the same cron occurrence, the one whose insert succeeds launches it.

Every transaction here starts with a write, so SQLite takes its write lock before reading
anything (no stale-snapshot upgrade failures); a unique violation aborts the whole
transaction, which the caller retries as a takeover (PostgreSQL cannot continue an aborted
transaction without a savepoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tranche.batch.errors import JobExecutionAlreadyRunningError
from tranche.batch.tables import fire_lock, job_lock

__all__ = [
    "LockHolder",
    "claim_fire_lock",
    "insert_job_lock",
    "lock_holder",
    "release_job_lock",
    "renew_job_lock",
    "set_fire_lock_execution",
    "set_lock_execution",
    "take_over_stale_job_lock",
]


@dataclass(frozen=True)
class LockHolder:
    job_name: str
    job_execution_id: int | None
    owner: str
    claimed_at: datetime
    renewed_at: datetime


async def insert_job_lock(conn: AsyncConnection, job_name: str, owner: str, now: datetime) -> None:
    """Raises :class:`sqlalchemy.exc.IntegrityError` if the job is locked."""
    await conn.execute(
        insert(job_lock).values(
            job_name=job_name, owner=owner, claimed_at=now, renewed_at=now, job_execution_id=None
        )
    )


async def take_over_stale_job_lock(
    conn: AsyncConnection, job_name: str, owner: str, now: datetime, stale_before: datetime
) -> LockHolder | None:
    """Take the lock if its holder stopped renewing before ``stale_before``.

    Returns the dead holder (its ``job_execution_id`` is the execution to mark FAILED), or
    ``None`` when there is no lock row (released meanwhile: insert again). Raises
    :class:`JobExecutionAlreadyRunningError` when a live process holds it.
    """
    # A no-op write first: SQLite takes its write lock before reading (no stale snapshot),
    # PostgreSQL and MariaDB lock the row, so the holder read below cannot change under us.
    await conn.execute(
        update(job_lock).where(job_lock.c.job_name == job_name).values(job_name=job_lock.c.job_name)
    )
    holder = await lock_holder(conn, job_name, for_update=True)
    if holder is None:
        return None
    if holder.renewed_at >= stale_before:
        raise JobExecutionAlreadyRunningError(job_name, holder.job_execution_id)
    await conn.execute(
        update(job_lock)
        .where(job_lock.c.job_name == job_name)
        .values(owner=owner, claimed_at=now, renewed_at=now)
    )
    return holder


async def lock_holder(
    conn: AsyncConnection, job_name: str, *, for_update: bool = False
) -> LockHolder | None:
    stmt = select(job_lock).where(job_lock.c.job_name == job_name)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).mappings().first()
    if row is None:
        return None
    return LockHolder(
        row["job_name"], row["job_execution_id"], row["owner"], row["claimed_at"], row["renewed_at"]
    )


async def set_lock_execution(
    conn: AsyncConnection, job_name: str, owner: str, execution_id: int
) -> None:
    await conn.execute(
        update(job_lock)
        .where(job_lock.c.job_name == job_name, job_lock.c.owner == owner)
        .values(job_execution_id=execution_id)
    )


#: Built once: every chunk renews the lock, and a statement object keeps its cache key.
_RENEW = (
    update(job_lock)
    .where(
        job_lock.c.job_name == bindparam("k_job_name"),
        job_lock.c.job_execution_id == bindparam("k_execution"),
    )
    .values(renewed_at=bindparam("renewed_at", type_=job_lock.c.renewed_at.type))
)


async def renew_job_lock(
    conn: AsyncConnection, job_name: str, execution_id: int, now: datetime
) -> bool:
    """Heartbeat; ``False`` means the lock is no longer this execution's."""
    params = {"k_job_name": job_name, "k_execution": execution_id, "renewed_at": now}
    result = await conn.execute(_RENEW, params)
    return result.rowcount == 1


async def release_job_lock(conn: AsyncConnection, job_name: str, execution_id: int) -> None:
    await conn.execute(
        delete(job_lock).where(
            job_lock.c.job_name == job_name, job_lock.c.job_execution_id == execution_id
        )
    )


async def claim_fire_lock(
    conn: AsyncConnection, job_name: str, fire_time: datetime, owner: str, now: datetime
) -> None:
    """Raises :class:`sqlalchemy.exc.IntegrityError` if another replica fired this occurrence."""
    await conn.execute(
        insert(fire_lock).values(
            job_name=job_name, fire_time=fire_time, owner=owner, claimed_at=now
        )
    )


async def set_fire_lock_execution(
    conn: AsyncConnection, job_name: str, fire_time: datetime, execution_id: int
) -> None:
    await conn.execute(
        update(fire_lock)
        .where(fire_lock.c.job_name == job_name, fire_lock.c.fire_time == fire_time)
        .values(job_execution_id=execution_id)
    )
