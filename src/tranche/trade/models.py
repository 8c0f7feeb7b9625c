"""Tables of the trade service, with the original's names, types and seeded lookups.

``trade_order``, ``execution`` and the four lookup tables (``blotter``,
``trade_type``, ``execution_status``, ``destination``) as Flyway V1-V7 of the
original left them. Two execution columns are ours: ``average_price`` (the
original dropped the fill price the execution service reports, its bug C8),
``submission_claimed_at`` (the in-flight marker of a submission) and
``submission_key`` (the key to resend under when an answer could not be recorded).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from tranche.core.sqltypes import Char, Quantity, UtcDateTime

__all__ = [
    "BLOTTERS",
    "DESTINATIONS",
    "EXECUTION_STATUSES",
    "TRADE_TYPES",
    "Base",
    "Blotter",
    "Char",
    "Destination",
    "Execution",
    "ExecutionStatus",
    "Quantity",
    "StatusId",
    "TradeOrder",
    "TradeType",
    "UtcDateTime",
]


# Seed rows in insertion order: the ids are part of the contract (submission maps
# order types to trade_type ids 1-5; fills and submission use status ids).
BLOTTERS = [("Default", "Default"), ("EQ", "Equity"), ("FI", "Fixed Income"), ("HOLD", "Hold")]
TRADE_TYPES = [
    ("BUY", "Buy"),
    ("SELL", "Sell"),
    ("SHORT", "Sell to Open"),
    ("COVER", "Buy to Close"),
    ("EXRC", "Exercise"),
]
DESTINATIONS = [
    ("ML", "Merrill Lynch"),
    ("RBC", "Royal Bank of Canada"),
    ("JPM", "Chase"),
    ("IB", "Interactive Brokers"),
    ("INST", "Instinet"),
    ("POSIT", "Posit"),
]
EXECUTION_STATUSES = [
    ("NEW", "New"),
    ("SENT", "Sent"),
    ("WORK", "In progress"),
    ("FULL", "Filled"),
    ("PART", "Partial fill"),
    ("HOLD", "Hold"),
    ("CNCL", "Cancel"),
    ("CNCLD", "Cancelled"),
    ("CPART", "Cancelled with partial fill"),
    ("DEL", "Delete"),
]


class StatusId:
    """Seeded ``execution_status`` ids the service itself sets."""

    NEW = 1
    SENT = 2


class Base(DeclarativeBase):
    pass


class _Lookup:
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    abbreviation: Mapped[str] = mapped_column(sa.String(20))
    version: Mapped[int] = mapped_column(sa.Integer, server_default="1", default=1)


class Blotter(_Lookup, Base):
    __tablename__ = "blotter"
    name: Mapped[str] = mapped_column(sa.String(100))


class TradeType(_Lookup, Base):
    __tablename__ = "trade_type"
    abbreviation: Mapped[str] = mapped_column(sa.String(10))
    description: Mapped[str] = mapped_column(sa.String(60))


class ExecutionStatus(_Lookup, Base):
    __tablename__ = "execution_status"
    description: Mapped[str] = mapped_column(sa.String(60))


class Destination(_Lookup, Base):
    __tablename__ = "destination"
    description: Mapped[str] = mapped_column(sa.String(60))


class TradeOrder(Base):
    __tablename__ = "trade_order"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.Integer, unique=True)
    portfolio_id: Mapped[str] = mapped_column(Char(24))
    order_type: Mapped[str] = mapped_column(Char(10))
    security_id: Mapped[str] = mapped_column(Char(24))
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    quantity_sent: Mapped[Decimal] = mapped_column(Quantity(), default=Decimal(0))
    limit_price: Mapped[Decimal | None] = mapped_column(Quantity())
    trade_timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    blotter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("blotter.id"))
    submitted: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    blotter: Mapped[Blotter | None] = relationship(lazy="joined")


class Execution(Base):
    __tablename__ = "execution"
    # Ids are never reused: the execution service keeps ours as tradeServiceExecutionId
    # and calls back with it, so a deleted (compensated) id must not come back.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    execution_timestamp: Mapped[datetime] = mapped_column(UtcDateTime())
    execution_status_id: Mapped[int] = mapped_column(sa.ForeignKey("execution_status.id"))
    blotter_id: Mapped[int | None] = mapped_column(sa.ForeignKey("blotter.id"))
    trade_type_id: Mapped[int | None] = mapped_column(sa.ForeignKey("trade_type.id"))
    trade_order_id: Mapped[int] = mapped_column(sa.ForeignKey("trade_order.id"))
    destination_id: Mapped[int] = mapped_column(sa.ForeignKey("destination.id"))
    quantity_ordered: Mapped[Decimal] = mapped_column(Quantity())
    quantity_placed: Mapped[Decimal] = mapped_column(Quantity())
    quantity_filled: Mapped[Decimal] = mapped_column(Quantity(), default=Decimal(0))
    limit_price: Mapped[Decimal | None] = mapped_column(Quantity())
    average_price: Mapped[Decimal | None] = mapped_column(Quantity())
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    execution_service_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    #: Set while a submission is in flight; a stale one (crashed submitter) may be retaken.
    submission_claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    #: The Idempotency-Key of a send whose answer could not be recorded; the next
    #: submission reuses it so the execution service replays instead of creating again.
    submission_key: Mapped[str | None] = mapped_column(sa.String(64))

    execution_status: Mapped[ExecutionStatus] = relationship(lazy="joined")
    blotter: Mapped[Blotter | None] = relationship(lazy="joined")
    trade_type: Mapped[TradeType | None] = relationship(lazy="joined")
    trade_order: Mapped[TradeOrder] = relationship(lazy="joined")
    destination: Mapped[Destination] = relationship(lazy="joined")
