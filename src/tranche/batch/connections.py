"""Connections a chunk step keeps checked out from one chunk to the next.

A pool checkout costs round trips of its own: ``pool_pre_ping`` sends a ping on every
checkout and the pool's reset-on-return sends a ``ROLLBACK`` on every return. A chunk
touches batchdb and usually one owner database, so a checkout per database per chunk
was four round trips per chunk on top of the work (as many as the chunk's own
statements for tokenCleanupJob). A step therefore checks each database's connection out
once and runs every chunk's transaction on it; each chunk still begins and commits its
own transaction, so nothing of a chunk's isolation changes.

After a failed unit of work the step gives every connection back to the pool: the
failure may have been the connection itself (lost, killed), and the next try then gets a
fresh one through the pool's pre-ping, exactly as before.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tranche.core.logging import get_logger

__all__ = ["HeldConnections"]

log = get_logger(__name__)


class HeldConnections:
    """One checked-out connection per engine, kept until :meth:`release`."""

    def __init__(self) -> None:
        self._held: dict[int, AsyncConnection] = {}

    async def get(self, engine: AsyncEngine) -> AsyncConnection:
        key = id(engine.sync_engine)
        conn = self._held.get(key)
        if conn is None or conn.closed or conn.invalidated:
            conn = await engine.connect()
            self._held[key] = conn
        return conn

    async def release(self) -> None:
        """Give every connection back to the pool (its reset rolls back what is left)."""
        held, self._held = list(self._held.values()), {}
        for conn in held:
            try:
                await conn.close()
            except Exception:
                # A connection that died: the pool discards it; nothing of ours was on it.
                log.warning("batch.connection.release_failed", exc_info=True)
