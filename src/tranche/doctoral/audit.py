"""The audit log: every job run, manual trigger, stop and archive access, append-only and chained.

Two defences. Database triggers refuse UPDATE and DELETE on ``audit_log`` on
MariaDB, PostgreSQL and SQLite (migration ``0001_doctoral``). And each row
stores ``row_hash = sha256(canonical row ‖ prev_hash)`` with a gap-free ``seq``,
so anyone able to bypass the triggers (a DBA dropping them) still cannot change
or remove a row without :func:`verify_chain` pointing at it. The chain cannot
see rows cut off the end; every append logs its ``seq`` and ``row_hash``, so
shipped logs serve as the outside anchor.

Appends race safely across replicas: ``seq`` is unique, so two writers that
read the same head collide on insert and the loser retries on the new head.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.doctoral.models import audit_log, utc_naive

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditEventType",
    "AuditLog",
    "ChainReport",
    "row_hash",
    "verify_chain",
]

log = get_logger(__name__)

GENESIS = "0" * 64
_LIMITS = {
    "event_action": 50,
    "job_name": 100,
    "user_id": 255,
    "user_role": 255,
    "resource_path": 500,
    "status": 20,
    "ip_address": 64,
    "user_agent": 500,
}
_HASHED = (
    "seq",
    "timestamp",
    "event_type",
    "event_action",
    "job_name",
    "execution_id",
    "user_id",
    "user_role",
    "resource_path",
    "details",
    "status",
    "ip_address",
    "user_agent",
)


class AuditEventType(StrEnum):
    JOB_EXECUTION = "JOB_EXECUTION"
    MANUAL_TRIGGER = "MANUAL_TRIGGER"
    JOB_STOP = "JOB_STOP"
    JOB_RESTART = "JOB_RESTART"
    JOB_ABANDON = "JOB_ABANDON"
    ARCHIVE_ACCESS = "ARCHIVE_ACCESS"


@dataclass(frozen=True)
class AuditEvent:
    event_type: AuditEventType
    event_action: str
    status: str
    job_name: str | None = None
    execution_id: int | None = None
    user_id: str | None = None
    user_role: str | None = None
    resource_path: str | None = None
    details: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None


def row_hash(row: dict[str, Any], prev_hash: str) -> str:
    """The hash a row must carry given its fields and the previous row's hash."""
    fields = {k: row.get(k) for k in _HASHED}
    ts = fields["timestamp"]
    if isinstance(ts, datetime):
        fields["timestamp"] = utc_naive(ts).isoformat(timespec="microseconds")
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{canonical}|{prev_hash}".encode()).hexdigest()


class AuditLog:
    """Appends to ``audit_log`` in batchdb."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        # Saves same-process writers from colliding; replicas still rely on the unique seq.
        self._lock = asyncio.Lock()

    async def record(self, event: AuditEvent, *, once: bool = False) -> int:
        """Append ``event``; returns its ``seq``.

        ``once``: the event happens once for its execution (a run's end, its failure mail),
        so a row with the same type, action, execution, status and details already there is
        this event, appended by an earlier try whose COMMIT landed but whose answer was lost
        (the callers retry through lost connections): return its ``seq``, append nothing.
        """
        row: dict[str, Any] = {
            "event_type": str(event.event_type),
            "event_action": event.event_action,
            "job_name": event.job_name,
            "execution_id": event.execution_id,
            "user_id": event.user_id,
            "user_role": event.user_role,
            "resource_path": event.resource_path,
            "details": event.details,
            "status": event.status,
            "ip_address": event.ip_address,
            "user_agent": event.user_agent,
        }
        for key, limit in _LIMITS.items():
            if isinstance(row[key], str):
                row[key] = row[key][:limit]
        async with self._lock:
            for attempt in range(20):
                try:
                    return await self._append(row, once=once)
                except IntegrityError:
                    await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise RuntimeError("audit_log: could not append after 20 attempts (seq contention)")

    async def _append(self, fields: dict[str, Any], *, once: bool = False) -> int:
        async with self.db.transaction() as session:
            if once and fields["execution_id"] is not None:
                same = [
                    audit_log.c[k] == fields[k]
                    for k in ("event_type", "event_action", "execution_id", "status", "details")
                ]
                landed = (
                    await session.execute(sa.select(audit_log.c.seq).where(*same).limit(1))
                ).scalar()
                if landed is not None:
                    return int(landed)
            head = (
                await session.execute(
                    sa.select(audit_log.c.seq, audit_log.c.row_hash)
                    .order_by(audit_log.c.seq.desc())
                    .limit(1)
                )
            ).first()
            seq = 1 if head is None else int(head.seq) + 1
            prev = GENESIS if head is None else str(head.row_hash)
            row = {**fields, "seq": seq, "timestamp": utc_naive(self.clock())}
            digest = row_hash(row, prev)
            await session.execute(
                sa.insert(audit_log).values(**row, prev_hash=prev, row_hash=digest)
            )
        log.info(
            "audit_appended",
            seq=seq,
            row_hash=digest,
            event_type=fields["event_type"],
            event_action=fields["event_action"],
            job_name=fields["job_name"],
            execution_id=fields["execution_id"],
            user=fields["user_id"],
        )
        return seq


@dataclass(frozen=True)
class ChainReport:
    """Result of :func:`verify_chain`: ``ok``, rows checked, and the first broken ``seq``."""

    ok: bool
    rows: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None


async def verify_chain(db: Database, page: int = 1000) -> ChainReport:
    """Walk the whole log in ``seq`` order and recompute every hash."""
    prev, expected_seq, rows = GENESIS, 1, 0
    cols = [audit_log.c[k] for k in _HASHED] + [audit_log.c.prev_hash, audit_log.c.row_hash]
    async with db.sessions() as session:
        while True:
            batch = (
                (
                    await session.execute(
                        sa.select(*cols)
                        .where(audit_log.c.seq >= expected_seq)
                        .order_by(audit_log.c.seq)
                        .limit(page)
                    )
                )
                .mappings()
                .all()
            )
            if not batch:
                return ChainReport(True, rows, prev)
            for r in batch:
                seq = int(r["seq"])
                if seq != expected_seq:
                    return ChainReport(
                        False, rows, prev, expected_seq, f"row {expected_seq} is missing"
                    )
                if r["prev_hash"] != prev:
                    return ChainReport(
                        False, rows, prev, seq, "prev_hash does not match row before"
                    )
                if row_hash(dict(r), prev) != r["row_hash"]:
                    return ChainReport(
                        False, rows, prev, seq, "row content does not match its hash"
                    )
                prev, expected_seq, rows = str(r["row_hash"]), seq + 1, rows + 1
