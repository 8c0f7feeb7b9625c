"""archiveJob's database maintenance: reclaim space and refresh statistics where the job wrote.

For each table the job changed, in the database that holds it (the original
ran OPTIMIZE on its source databases against batchdb's own tables, which do not
exist there): MariaDB ``OPTIMIZE TABLE`` (InnoDB rebuilds the table, reclaiming
what the deletes freed, and re-analyses it) then ``ANALYZE TABLE``; PostgreSQL
``VACUUM (ANALYZE)``; SQLite ``ANALYZE``. These statements cannot run inside
a transaction on PostgreSQL and commit implicitly on MariaDB, so each runs on
its own autocommit connection. Results (MariaDB's status rows) are logged and
kept in the step's context under ``maintenance``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tranche.batch.job import RepeatStatus
from tranche.batch.uow import StepContext
from tranche.core.db import Database
from tranche.core.logging import get_logger

__all__ = ["Maintenance", "TouchedTable", "maintain"]

log = get_logger(__name__)


@dataclass(frozen=True)
class TouchedTable:
    db: Database
    table: str
    #: Names of job counts: the table was changed when any of them is positive.
    when: tuple[str, ...]


def _statements(dialect: str, quoted: str) -> list[tuple[str, str]]:
    if dialect in ("mysql", "mariadb"):
        return [("OPTIMIZE", f"OPTIMIZE TABLE {quoted}"), ("ANALYZE", f"ANALYZE TABLE {quoted}")]
    if dialect == "postgresql":
        return [("VACUUM ANALYZE", f"VACUUM (ANALYZE) {quoted}")]
    return [("ANALYZE", f"ANALYZE {quoted}")]


async def maintain(db: Database, table: str) -> list[dict[str, Any]]:
    """Run the dialect's maintenance on ``table``; one result per statement (or status row)."""
    engine = db.engine
    quoted = engine.dialect.identifier_preparer.quote(table)
    results: list[dict[str, Any]] = []
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        for operation, statement in _statements(db.dialect, quoted):
            result = await conn.execute(sa.text(statement))
            base = {"database": db.name, "table": table, "operation": operation}
            if result.returns_rows:
                for row in result.mappings().all():
                    results.append(
                        {
                            **base,
                            "status": str(row.get("Msg_type", "status")),
                            "message": str(row.get("Msg_text", "")),
                        }
                    )
            else:
                results.append({**base, "status": "status", "message": "OK"})
    return results


class Maintenance:
    """The ``optimizeDatabaseStep`` tasklet over the tables the job's counts say it changed."""

    def __init__(
        self, tables: Sequence[TouchedTable], counts: Callable[[StepContext], dict[str, int]]
    ) -> None:
        self.tables, self.counts = list(tables), counts

    async def __call__(self, ctx: StepContext) -> RepeatStatus:
        counts = self.counts(ctx)
        done: list[dict[str, Any]] = []
        for touched in self.tables:
            if not any(counts.get(k, 0) > 0 for k in touched.when):
                continue
            results = await maintain(touched.db, touched.table)
            for r in results:
                log.info("database_maintenance", **r)
            done += results
        ctx.step_context["maintenance"] = done
        ctx.count(write=len({(r["database"], r["table"]) for r in done}))
        return RepeatStatus.FINISHED
