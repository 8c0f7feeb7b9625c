"""What ``tranche outbox status`` and ``tranche outbox replay`` do, on any outbox database."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from tranche.core.clock import utc_now
from tranche.core.db import Database
from tranche.core.outbox.table import OutboxStatus, outbox_table

__all__ = ["OutboxStatusReport", "TopicStatus", "outbox_status", "replay_dead"]

t = outbox_table


@dataclass(frozen=True)
class TopicStatus:
    topic: str
    pending: int
    sent: int
    dead: int
    oldest_pending_age_s: float | None
    last_dead_error: str | None


@dataclass(frozen=True)
class OutboxStatusReport:
    topics: list[TopicStatus]

    @property
    def pending(self) -> int:
        return sum(s.pending for s in self.topics)

    @property
    def dead(self) -> int:
        return sum(s.dead for s in self.topics)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "dead": self.dead,
            "topics": [asdict(s) for s in self.topics],
        }


async def outbox_status(db: Database, now: datetime | None = None) -> OutboxStatusReport:
    """Row counts per topic and status, the oldest pending age, the latest dead row's error."""
    now = now or utc_now()
    counts: dict[str, dict[str, int]] = {}
    oldest: dict[str, datetime] = {}
    async with db.sessions() as session:
        result = await session.execute(
            select(t.c.topic, t.c.status, func.count(), func.min(t.c.created_at)).group_by(
                t.c.topic, t.c.status
            )
        )
        for topic, status, n, first in result.all():
            counts.setdefault(topic, {})[status] = int(n)
            if status == OutboxStatus.PENDING:
                oldest[topic] = first
        errors: dict[str, str | None] = {}
        for topic, c in counts.items():
            if c.get(OutboxStatus.DEAD, 0):
                errors[topic] = (
                    await session.execute(
                        select(t.c.last_error)
                        .where(t.c.topic == topic, t.c.status == OutboxStatus.DEAD.value)
                        .order_by(t.c.seq.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
    return OutboxStatusReport(
        [
            TopicStatus(
                topic=topic,
                pending=c.get(OutboxStatus.PENDING, 0),
                sent=c.get(OutboxStatus.SENT, 0),
                dead=c.get(OutboxStatus.DEAD, 0),
                oldest_pending_age_s=(
                    max(0.0, (now - oldest[topic]).total_seconds()) if topic in oldest else None
                ),
                last_dead_error=errors.get(topic),
            )
            for topic, c in sorted(counts.items())
        ]
    )


async def replay_dead(
    db: Database,
    topic: str | None = None,
    since: datetime | None = None,
    now: datetime | None = None,
) -> int:
    """Put DEAD rows (of ``topic``, created at or after ``since``) back to PENDING; returns count.

    Attempts start again from zero. The last error is kept until the next attempt.
    """
    now = now or utc_now()
    stmt = (
        update(t)
        .where(t.c.status == OutboxStatus.DEAD.value)
        .values(
            status=OutboxStatus.PENDING.value,
            attempts=0,
            available_at=now,
            first_attempt_at=None,
            last_attempt_at=None,
        )
    )
    if topic is not None:
        stmt = stmt.where(t.c.topic == topic)
    if since is not None:
        stmt = stmt.where(t.c.created_at >= since)
    async with db.transaction() as session:
        result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)
