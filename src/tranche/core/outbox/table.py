"""The ``outbox`` table, and the Alembic helpers a service's migration calls to create it.

One row per event. ``seq`` orders events (the relay publishes in ``seq`` order,
so events of one key keep their order); ``event_id`` travels as the
``event-id`` header so consumers can drop the duplicates at-least-once delivery
allows. ``payload`` holds the value exactly as it will be sent (bytes, already
serialised at enqueue), so the relay never re-serialises and a value the
broker refuses can be replayed unchanged once the cause is fixed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from tranche.core.sqltypes import UtcDateTime

__all__ = [
    "OutboxStatus",
    "UtcDateTime",
    "add_outbox_table",
    "drop_outbox_table",
    "outbox_metadata",
    "outbox_table",
]

TABLE = "outbox"
STATUS_SEQ_INDEX = "ix_outbox_status_seq"
EVENT_ID_INDEX = "uq_outbox_event_id"
MAX_TOPIC = 245  # Kafka allows 249 characters; "<topic>.dlq" must still fit.
MAX_KEY = 512
MAX_ERROR = 2000


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    DEAD = "DEAD"


def _columns() -> list[sa.Column[Any]]:
    return [
        # SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(MAX_TOPIC + 4), nullable=False),
        sa.Column("key", sa.String(MAX_KEY), nullable=True),
        sa.Column(
            "payload", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql"), nullable=False
        ),
        # JSON object: header name -> text, or {"b64": ...} for a value that is not UTF-8.
        sa.Column("headers", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql"), nullable=True),
        sa.Column("status", sa.String(8), nullable=False, server_default=OutboxStatus.PENDING),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        # Why the row can never be sent as enqueued (e.g. an unserialisable value).
        sa.Column("defect", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("available_at", UtcDateTime(), nullable=False),
        sa.Column("first_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
    ]


_TABLE_KW: dict[str, Any] = {
    # Binary collation: topics and keys are case-sensitive, as in Kafka.
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}

# On PostgreSQL the claim index leaves out SENT rows: it stays as small as the backlog
# however long the history, and marking a row SENT adds no entry to it.
_UNSENT = sa.text("status <> 'SENT'")

# A queue table: analyse and vacuum it after a fixed number of changes rather than a
# fraction of its (mostly SENT) size, so the planner sees a backlog when there is one.
_PG_STORAGE = (
    "ALTER TABLE outbox SET (autovacuum_analyze_scale_factor = 0, "
    "autovacuum_analyze_threshold = 5000, autovacuum_vacuum_scale_factor = 0, "
    "autovacuum_vacuum_threshold = 20000)"
)

outbox_metadata = sa.MetaData()
outbox_table = sa.Table(TABLE, outbox_metadata, *_columns(), **_TABLE_KW)
sa.Index(STATUS_SEQ_INDEX, outbox_table.c.status, outbox_table.c.seq, postgresql_where=_UNSENT)
sa.Index(EVENT_ID_INDEX, outbox_table.c.event_id, unique=True)
sa.event.listen(
    outbox_table,
    "after_create",
    sa.DDL(_PG_STORAGE).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
)


def add_outbox_table(op: Any) -> None:
    """Create the table and its indexes; call from a service migration's ``upgrade()``."""
    op.create_table(TABLE, *_columns(), **_TABLE_KW)
    op.create_index(STATUS_SEQ_INDEX, TABLE, ["status", "seq"], postgresql_where=_UNSENT)
    op.create_index(EVENT_ID_INDEX, TABLE, ["event_id"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_STORAGE)


def drop_outbox_table(op: Any) -> None:
    """Drop what :func:`add_outbox_table` created; call from ``downgrade()``."""
    op.drop_index(EVENT_ID_INDEX, table_name=TABLE)
    op.drop_index(STATUS_SEQ_INDEX, table_name=TABLE)
    op.drop_table(TABLE)
