"""Idempotency keys: a retried request with the same ``Idempotency-Key`` gets the first answer.

The first request with a key *claims* it (a row in ``idempotency_key``, unique on
``(scope, key)``) and holds a lease while it works. The outcome is stored with
:meth:`IdempotencyStore.complete` and replayed to any later request with the same
key and the same request fingerprint until the row expires (24 h by default).
Same key, different fingerprint → :class:`IdempotencyKeyReused` (answer 422).
A duplicate that arrives while the first is still running waits for it, up to
``wait_s``, then gets :class:`IdempotencyInProgress` (answer 409).

Work that commits in several transactions records its progress with
:meth:`IdempotencyStore.checkpoint` *inside* each of those transactions. If the
owner dies, its lease runs out and the next request with the key takes the claim
over and receives that checkpoint, so it can finish the job without redoing the
committed part. Every checkpoint is fenced by the owner token: a stale owner's
checkpoint raises :class:`IdempotencyLeaseLost`, rolling back its transaction.

Hand-written because the existing libraries are framework middlewares that cache
whole responses in memory or Redis and know nothing of a database transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tranche.core.clock import Clock, utc_now
from tranche.core.db import Database
from tranche.core.logging import get_logger
from tranche.core.sqltypes import UtcDateTime

__all__ = [
    "IDEMPOTENCY_TABLE",
    "Claim",
    "IdempotencyError",
    "IdempotencyInProgress",
    "IdempotencyKeyReused",
    "IdempotencyLeaseLost",
    "IdempotencyStore",
    "StoredResponse",
    "add_idempotency_table",
    "drop_idempotency_table",
    "fingerprint",
    "idempotency_table",
    "validate_key",
]

IDEMPOTENCY_TABLE = "idempotency_key"
MAX_KEY_LENGTH = 255
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"

log = get_logger(__name__)


def _long_text() -> sa.types.TypeEngine[str]:
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _long_binary() -> sa.types.TypeEngine[bytes]:
    return sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def _columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("scope", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(MAX_KEY_LENGTH), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("owner", sa.String(36), nullable=True),
        sa.Column("locked_until", UtcDateTime(), nullable=True),
        sa.Column("state", _long_text(), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_media_type", sa.String(100), nullable=True),
        sa.Column("response_body", _long_binary(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
    ]


def idempotency_table(metadata: sa.MetaData, name: str = IDEMPOTENCY_TABLE) -> sa.Table:
    """The table definition, added to ``metadata`` (for queries and ``create_all``)."""
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(name, metadata, *_columns(), sa.Index(f"ix_{name}_expires_at", "expires_at"))


def add_idempotency_table(op: Any, name: str = IDEMPOTENCY_TABLE) -> None:
    """Create the table from an Alembic migration (``op`` is ``alembic.op``)."""
    op.create_table(name, *_columns())
    op.create_index(f"ix_{name}_expires_at", name, ["expires_at"])


def drop_idempotency_table(op: Any, name: str = IDEMPOTENCY_TABLE) -> None:
    op.drop_index(f"ix_{name}_expires_at", table_name=name)
    op.drop_table(name)


def fingerprint(*parts: str | bytes) -> str:
    """SHA-256 over the parts (e.g. method, path, canonical body), length-prefixed."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def validate_key(key: str) -> str | None:
    """Why ``key`` is unusable as an idempotency key, or None when it is fine."""
    if not key.strip():
        return "Idempotency-Key must not be blank"
    if len(key) > MAX_KEY_LENGTH:
        return f"Idempotency-Key cannot exceed {MAX_KEY_LENGTH} characters"
    if not key.isprintable():
        return "Idempotency-Key must contain printable characters only"
    return None


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


class IdempotencyError(Exception):
    """Base of the outcomes a caller turns into an HTTP answer."""


class IdempotencyKeyReused(IdempotencyError):
    """The key was first used with a different request."""


class IdempotencyInProgress(IdempotencyError):
    """Another request with the key is still running (and did not finish in time)."""


class IdempotencyLeaseLost(IdempotencyError):
    """This owner's lease ran out and another request took the key over."""


@dataclass(frozen=True)
class StoredResponse:
    status: int
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`IdempotencyStore.claim`.

    ``replay`` is set when the key already has a stored answer; otherwise the caller
    owns the key (``owner``) and ``state`` is the checkpoint of a previous owner that
    did not finish (None on a first attempt).
    """

    scope: str
    key: str
    owner: str | None
    replay: StoredResponse | None = None
    state: Any = None


class IdempotencyStore:
    """Claims, checkpoints and stored answers of idempotency keys in ``db``."""

    def __init__(
        self,
        db: Database,
        *,
        ttl_s: float = 24 * 3600,
        lease_s: float = 60.0,
        wait_s: float = 10.0,
        poll_s: float = 0.05,
        clock: Clock = utc_now,
        table: sa.Table | None = None,
    ) -> None:
        self.db = db
        self.ttl = timedelta(seconds=ttl_s)
        self.lease = timedelta(seconds=lease_s)
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.clock = clock
        self.table = table if table is not None else idempotency_table(sa.MetaData())

    async def claim(self, scope: str, key: str, request_fingerprint: str) -> Claim:
        """Own ``key`` for this request, or learn its stored answer; see the module doc."""
        t = self.table
        owner = str(uuid.uuid4())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_s
        while True:
            now = self.clock()
            try:
                async with self.db.transaction() as s:
                    await s.execute(
                        t.insert().values(
                            scope=scope,
                            key=key,
                            fingerprint=request_fingerprint,
                            status=IN_PROGRESS,
                            owner=owner,
                            locked_until=now + self.lease,
                            created_at=now,
                            expires_at=now + self.ttl,
                        )
                    )
                return Claim(scope, key, owner)
            except IntegrityError:
                pass
            claim = await self._existing(scope, key, request_fingerprint, owner, now)
            if claim is not None:
                return claim
            if loop.time() >= deadline:
                raise IdempotencyInProgress(
                    "A request with this Idempotency-Key is still being processed"
                )
            await asyncio.sleep(self.poll_s)

    async def _existing(
        self, scope: str, key: str, request_fingerprint: str, owner: str, now: datetime
    ) -> Claim | None:
        """Resolve a claim against the row that is already there (None: try again)."""
        t = self.table
        where = (t.c.scope == scope) & (t.c.key == key)
        async with self.db.transaction() as s:
            row = (await s.execute(sa.select(t).where(where))).mappings().first()
            if row is None:
                return None
            if row["expires_at"] <= now:
                await s.execute(t.delete().where(where & (t.c.expires_at <= now)))
                return None
            if row["fingerprint"] != request_fingerprint:
                raise IdempotencyKeyReused(
                    "Idempotency-Key was already used with a different request"
                )
            if row["status"] == COMPLETED:
                stored = StoredResponse(
                    int(row["response_status"]),
                    str(row["response_media_type"]),
                    bytes(row["response_body"]),
                )
                return Claim(scope, key, None, replay=stored)
            if row["locked_until"] is not None and row["locked_until"] > now:
                return None
            taken = await s.execute(
                t.update()
                .where(where & (t.c.status == IN_PROGRESS) & (t.c.owner == row["owner"]))
                .values(owner=owner, locked_until=now + self.lease)
            )
            if _rowcount(taken) != 1:
                return None
        state = json.loads(row["state"]) if row["state"] else None
        log.warning("idempotency_takeover", scope=scope, resumed=state is not None)
        return Claim(scope, key, owner, state=state)

    def _owned(self, claim: Claim) -> sa.ColumnElement[bool]:
        t = self.table
        if claim.owner is None:
            raise ValueError("a replayed claim has no owner")
        return (
            (t.c.scope == claim.scope)
            & (t.c.key == claim.key)
            & (t.c.owner == claim.owner)
            & (t.c.status == IN_PROGRESS)
        )

    async def checkpoint(self, session: AsyncSession, claim: Claim, state: Any) -> None:
        """Record ``state`` (JSON-able) in the caller's transaction and renew the lease."""
        result = await session.execute(
            self.table.update()
            .where(self._owned(claim))
            .values(state=json.dumps(state), locked_until=self.clock() + self.lease)
        )
        if _rowcount(result) != 1:
            raise IdempotencyLeaseLost("the idempotency lease expired and was taken over")

    async def complete(
        self,
        claim: Claim,
        status: int,
        body: bytes,
        media_type: str = "application/json",
        session: AsyncSession | None = None,
    ) -> None:
        """Store the answer for replays (in ``session`` when given, else on its own)."""
        stmt = (
            self.table.update()
            .where(self._owned(claim))
            .values(
                status=COMPLETED,
                owner=None,
                locked_until=None,
                state=None,
                response_status=status,
                response_media_type=media_type,
                response_body=body,
            )
        )
        if session is not None:
            result = await session.execute(stmt)
        else:
            async with self.db.transaction() as s:
                result = await s.execute(stmt)
        if _rowcount(result) != 1:
            raise IdempotencyLeaseLost("the idempotency lease expired and was taken over")

    async def release(self, claim: Claim) -> None:
        """Give the key up after a failure: without a checkpoint it is forgotten, else the
        lease ends now so that a retry resumes from the checkpoint at once."""
        t = self.table
        async with self.db.transaction() as s:
            await s.execute(t.delete().where(self._owned(claim) & t.c.state.is_(None)))
            await s.execute(t.update().where(self._owned(claim)).values(locked_until=self.clock()))

    async def purge_expired(self) -> int:
        """Delete every expired row; returns how many went."""
        t = self.table
        async with self.db.transaction() as s:
            result = await s.execute(t.delete().where(t.c.expires_at <= self.clock()))
        return _rowcount(result)

    async def lookup(self, scope: str, key: str) -> Mapping[str, Any] | None:
        """The row of ``key`` as stored (for operators and tests), or None."""
        t = self.table
        async with self.db.sessions() as s:
            row = (
                (await s.execute(sa.select(t).where((t.c.scope == scope) & (t.c.key == key))))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None
