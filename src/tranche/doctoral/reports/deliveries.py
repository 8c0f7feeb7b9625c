"""``report_deliveries`` (batchdb): who has received which month's report, and who has not yet.

One row per (month, recipient), written right after each SMTP exchange in its
own transaction — not in the step's unit of work, which rolls back when the
step fails — so a failed mail step leaves the truth behind and a restart (or
a re-run of the month) mails only the recipients not yet SENT. A crash between
the server's acceptance and that commit mails that one recipient twice; no
protocol can avoid it without the receiving server's help.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tranche.core.db import Database
from tranche.doctoral.models import utc_naive

__all__ = [
    "FAILED",
    "SENT",
    "SKIPPED",
    "Delivery",
    "add_report_deliveries",
    "deliveries_of",
    "drop_report_deliveries",
    "metadata",
    "record",
    "report_deliveries",
    "sent_to",
]

SENT, FAILED, SKIPPED = "SENT", "FAILED", "SKIPPED"

Ts = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
Pk = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()


def _columns() -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("id", Pk, primary_key=True, autoincrement=True),
        sa.Column("report_month", sa.String(7), nullable=False),
        sa.Column("file_name", sa.String(100), nullable=False),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", Ts),
        sa.Column("updated_at", Ts, nullable=False),
        sa.Column("job_execution_id", sa.BigInteger),
        sa.UniqueConstraint("report_month", "recipient", name="uq_report_delivery_recipient"),
    ]


report_deliveries = sa.Table("report_deliveries", metadata, *_columns())


def add_report_deliveries(op: object) -> None:
    """Create the table (called by migration ``0003_report_deliveries``)."""
    op.create_table("report_deliveries", *_columns())  # type: ignore[attr-defined]


def drop_report_deliveries(op: object) -> None:
    op.drop_table("report_deliveries")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Delivery:
    recipient: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime
    file_name: str
    job_execution_id: int | None


async def sent_to(db: Database, month: str) -> set[str]:
    """Lower-cased addresses that already received ``month``'s report."""
    t = report_deliveries
    query = sa.select(t.c.recipient).where(t.c.report_month == month, t.c.status == SENT)
    async with db.sessions() as s:
        return {str(r).lower() for r in (await s.execute(query)).scalars()}


async def record(
    db: Database,
    month: str,
    file_name: str,
    recipient: str,
    status: str,
    error: str | None,
    execution_id: int | None,
) -> None:
    """Insert or update the (month, recipient) row with the outcome of one attempt."""
    t = report_deliveries
    now = utc_naive(datetime.now(UTC))
    key = sa.and_(t.c.report_month == month, t.c.recipient == recipient)
    values = {
        "file_name": file_name,
        "status": status,
        "last_error": None if error is None else error[:2000],
        "updated_at": now,
        "job_execution_id": execution_id,
        **({"sent_at": now} if status == SENT else {}),
    }
    async with db.transaction() as s:
        found = (await s.execute(sa.select(t.c.id).where(key))).scalar()
        if found is None:
            await s.execute(
                sa.insert(t).values(report_month=month, recipient=recipient, attempts=1, **values)
            )
        else:
            await s.execute(
                sa.update(t).where(t.c.id == found).values(attempts=t.c.attempts + 1, **values)
            )


async def deliveries_of(db: Database, month: str) -> list[Delivery]:
    t = report_deliveries
    query = sa.select(t).where(t.c.report_month == month).order_by(t.c.id)
    async with db.sessions() as s:
        rows = (await s.execute(query)).all()
    return [
        Delivery(
            r.recipient,
            r.status,
            int(r.attempts),
            r.last_error,
            r.sent_at.replace(tzinfo=UTC) if r.sent_at else None,
            r.updated_at.replace(tzinfo=UTC),
            r.file_name,
            r.job_execution_id,
        )
        for r in rows
    ]
