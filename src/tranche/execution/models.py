"""Tables of the execution service.

``execution`` keeps the original's columns, types and defaults (Flyway V1-V3);
``trade_fill_callback`` is ours: the fills owed to the trade service, persisted in
the transaction of the fill so that none is lost while the trade service is down.
The outbox and idempotency tables come from ``tranche.core``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tranche.core.idempotency import idempotency_table
from tranche.core.sqltypes import EIGHT_PLACES, Char, Quantity, UtcDateTime

__all__ = [
    "EIGHT_PLACES",
    "Base",
    "Char",
    "Execution",
    "FillCallback",
    "Quantity",
    "UtcDateTime",
    "execution_table",
    "fill_callback_table",
    "idempotency",
]


class Base(DeclarativeBase):
    pass


class Execution(Base):
    __tablename__ = "execution"
    # Ids are keys on `orders` and the trade service stores them: never reuse one.
    # The original's V3 indexes minus idx_version (no query reads by version alone);
    # V4's are left out: they duplicate these for our queries and slow every insert.
    # Not idx_sent_timestamp either, and half of each page left free: stamping
    # sent_timestamp after the broker's ack is then a HOT update (migration 0003).
    __table_args__ = (
        sa.PrimaryKeyConstraint("id", name="execution_pk"),
        # The list filters ignore case (upper(col) IN ...): migration 0002.
        sa.Index("idx_upper_execution_status", sa.func.upper(sa.column("execution_status"))),
        sa.Index("idx_upper_trade_type", sa.func.upper(sa.column("trade_type"))),
        sa.Index("idx_upper_destination", sa.func.upper(sa.column("destination"))),
        sa.Index("idx_security_id", "security_id"),
        sa.Index("idx_received_timestamp_id", "received_timestamp", "id"),
        sa.Index("idx_status_received_timestamp", "execution_status", "received_timestamp"),
        sa.Index("idx_trade_service_execution_id", "trade_service_execution_id"),
        sa.Index(
            "idx_unfilled_executions",
            "execution_status",
            "quantity_filled",
            postgresql_where=sa.text("quantity_filled < quantity"),
            sqlite_where=sa.text("quantity_filled < quantity"),
        ),
        {"sqlite_autoincrement": True, "postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(sa.Integer)
    execution_status: Mapped[str] = mapped_column(sa.String(20))
    trade_type: Mapped[str] = mapped_column(sa.String(10))
    destination: Mapped[str] = mapped_column(sa.String(20))
    security_id: Mapped[str] = mapped_column(Char(24))
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    limit_price: Mapped[Decimal | None] = mapped_column(Quantity())
    received_timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    sent_timestamp: Mapped[datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1", default=1)
    trade_service_execution_id: Mapped[int | None] = mapped_column(sa.Integer)
    quantity_filled: Mapped[Decimal] = mapped_column(
        Quantity(), server_default="0", default=Decimal(0)
    )
    average_price: Mapped[Decimal | None] = mapped_column(Quantity())


class FillCallback(Base):
    """A fill to report to the trade service: PENDING until DELIVERED, FAILED or
    SUPERSEDED (a later fill of the same execution carries the cumulative quantity)."""

    __tablename__ = "trade_fill_callback"
    __table_args__ = (
        sa.Index("ix_trade_fill_callback_due", "status", "next_attempt_at"),
        sa.Index("ix_trade_fill_callback_execution", "execution_id"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    execution_id: Mapped[int] = mapped_column(sa.Integer)
    trade_service_execution_id: Mapped[int] = mapped_column(sa.Integer)
    execution_status: Mapped[str] = mapped_column(sa.String(20))
    quantity_filled: Mapped[Decimal] = mapped_column(Quantity())
    average_price: Mapped[Decimal | None] = mapped_column(Quantity())
    status: Mapped[str] = mapped_column(sa.String(12))
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="0", default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


execution_table: sa.Table = Execution.__table__  # type: ignore[assignment]
fill_callback_table: sa.Table = FillCallback.__table__  # type: ignore[assignment]
idempotency = idempotency_table(Base.metadata)
