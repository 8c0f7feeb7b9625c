"""Stamping ``sent_timestamp`` rewrites no index: drop ``idx_sent_timestamp``, fillfactor 50.

Revision ID: 0003_sent_timestamp_hot
Revises: 0002_filter_indexes
Create Date: 2026-12-04

Every created execution is updated once more, when the broker acknowledged its
``orders`` event (the relay's hook sets ``sent_timestamp``). With ``sent_timestamp``
indexed, PostgreSQL cannot make that a HOT update: each row gets a new version in
every index of the table (10 of them), 9-10 ms per 500 rows, on the path a batch
answer waits for. Without the index, and with half of each heap page left free at
insert (``fillfactor = 50``: a row is ~240 bytes, so the stamped version fits beside
the original on the same page), the update is HOT: 1.6 ms per 500 rows (scratch
table, median of 40). The table does not grow for it: a non-HOT update writes the
new version on another page anyway, a HOT one fills the half left free.

What the index served: ``sortBy=sentTimestamp`` ascending only (descending sorts
nulls last, which a backward scan of it cannot give). Without it that sort is a
top-N sort over the filtered rows, as ``sortBy=quantity`` always was. No query
filters on ``sent_timestamp``. To restore it (and lose the HOT update) see the
runbook: ``CREATE INDEX CONCURRENTLY idx_sent_timestamp ON execution (sent_timestamp)``.

The fillfactor applies to pages written from now on; an adopted table's existing
pages keep theirs (their rows are already stamped). An adopted original database
also keeps its V4 indexes, and ``idx_covering_common_fields`` INCLUDEs
``sent_timestamp``: there the stamp stays non-HOT until that index goes (runbook). MariaDB and SQLite have no
fillfactor; dropping the index spares InnoDB the secondary-index update as well.
"""

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sent_timestamp_hot"
down_revision: str | None = "0002_filter_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "idx_sent_timestamp"
FILLFACTOR = 50


def _has_index() -> bool:
    with warnings.catch_warnings():
        # SQLite's reflection skips 0002's upper() indexes with a warning; not ours to read.
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        indexes = sa.inspect(op.get_bind()).get_indexes("execution")
    return INDEX in {str(ix["name"]) for ix in indexes}


def upgrade() -> None:
    if _has_index():
        op.drop_index(INDEX, table_name="execution")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE execution SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE execution RESET (fillfactor)")
    if not _has_index():
        op.create_index(INDEX, "execution", ["sent_timestamp"])
