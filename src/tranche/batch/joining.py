"""Another database's work inside batchdb's transaction (MariaDB, one server and account).

When a database is on batchdb's server under batchdb's account (:func:`shared_schema`), one
connection reaches both: a writer's statements then run on batchdb's connection, in the
chunk's transaction, their tables named by the owner database (MariaDB's schema), and
commit with the checkpoint. :class:`JoinedSession` is the ORM session for that,
:class:`QualifiedConnection` the Core connection (no session to set up per chunk).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import CursorResult, Executable, event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

__all__ = ["SCHEMA_INFO", "JoinedSession", "QualifiedConnection", "is_joined", "shared_schema"]

#: ``Session.info`` key of a joined session: the schema its unqualified tables live in.
SCHEMA_INFO = "tranche.batch.schema"


class JoinedSession(Session):
    """A session inside batchdb's transaction whose tables are another database's."""


@event.listens_for(JoinedSession, "do_orm_execute")
def _qualify(state: ORMExecuteState) -> None:
    # Every statement of the session names its tables by the owner database (MariaDB's
    # schema), so they reach that database over batchdb's connection; the translation
    # happens at execution, so a statement built once keeps its compiled-cache entry.
    schema = state.session.info.get(SCHEMA_INFO)
    if schema is not None:
        state.update_execution_options(schema_translate_map={None: schema})


def is_joined(session: AsyncSession | AsyncConnection | QualifiedConnection) -> bool:
    """Whether ``session`` (or connection) is inside batchdb's transaction, for another
    database: its work commits with the checkpoint."""
    if isinstance(session, AsyncSession):
        return isinstance(session.sync_session, JoinedSession)
    return isinstance(session, QualifiedConnection)


def shared_schema(batch: AsyncEngine, other: AsyncEngine) -> tuple[bool, str | None]:
    """Whether ``other``'s database can join batchdb's transactions, and under which schema.

    Yes on MariaDB/MySQL when both URLs are the same server, account and options but for
    the database: one connection then reaches both (its account holds both databases'
    grants, as the runbook's one ``batch`` account does). The schema is ``other``'s
    database name (``None``: the same database, nothing to qualify).
    """
    if batch.dialect.name not in ("mysql", "mariadb") or other.dialect.name != batch.dialect.name:
        return False, None
    a, b = batch.url, other.url
    server = ("drivername", "username", "password", "host", "port", "query")
    if b.database is None or any(getattr(a, f) != getattr(b, f) for f in server):
        return False, None
    return True, None if a.database == b.database else b.database


class QualifiedConnection:
    """batchdb's connection running another database's Core statements, schema-qualified.

    What a writer gets from ``ctx.connection(engine, join_checkpoint=True)`` when
    ``engine``'s database can join batchdb's transaction: its tables are named by that
    database (MariaDB's schema) at execution, so a statement built once keeps its
    compiled-cache entry. No ORM session per chunk: a session's set-up, autobegin and
    close cost more Python than the statement (tokenCleanupJob's DELETE ~400 calls with
    one, ~190 without).
    """

    def __init__(self, connection: AsyncConnection, schema: str | None) -> None:
        self.connection = connection
        self._options: dict[str, Any] = (
            {} if schema is None else {"schema_translate_map": {None: schema}}
        )

    async def execute(
        self,
        statement: Executable,
        parameters: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        return await self.connection.execute(statement, parameters, execution_options=self._options)
