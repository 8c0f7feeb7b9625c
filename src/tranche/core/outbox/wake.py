"""Wakes the relays of a database when a session that enqueued events commits.

:func:`mark` flags the session (``session.info``); one ``after_commit`` listener
on the Session class finds the session's engine and calls every relay
registered for it, so services never call ``notify()`` themselves and the
commit-to-broker latency is not a poll interval. A rolled-back session wakes
nobody.

The session also carries the rows it wrote (the ``COPY_COLUMNS`` tuples ``enqueue``
built): the relay hands them to its producer at once (see ``handoff``) instead of
reading them back from the table.

A caller that does not wait for its events can :func:`hold` a session: its commits'
wake-ups are then collected in a :class:`Held` and delivered by ``Held.release``,
together (the batch endpoint answering at commit releases once its last chunk has
committed, so the hand-off does not take the core its other chunks and its answer
need). Held or not, a committed row stays PENDING until sent: a hold that is never
released only leaves its rows to the relay's next round.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session

__all__ = ["Held", "hold", "mark", "register", "unregister"]

_FLAG = "tranche.outbox.enqueued"
_ROWS = "tranche.outbox.rows"
_HOLD = "tranche.outbox.hold"
_lock = threading.Lock()
#: Called with the rows the committed transaction wrote (empty when not known).
Callback = Callable[[Sequence[tuple[Any, ...]]], None]
_callbacks: WeakKeyDictionary[Engine, list[Callback]] = WeakKeyDictionary()
_installed = False


def mark(session: Any, rows: Sequence[tuple[Any, ...]] = ()) -> None:
    """Record that ``session`` (sync or async) wrote outbox rows (``rows``, when given)
    in its current transaction."""
    info = session.info
    info[_FLAG] = True
    if rows:
        stash = info.get(_ROWS)
        if stash is None:
            info[_ROWS] = list(rows)
        else:
            stash.extend(rows)


class Held:
    """Wake-ups of held sessions' commits, delivered by :meth:`release` (rows of one
    engine together, in commit order)."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[Engine, list[tuple[Any, ...]]] = {}

    def add(self, engine: Engine, rows: Sequence[tuple[Any, ...]]) -> None:
        self._rows.setdefault(engine, []).extend(rows)

    def release(self) -> None:
        """Wake the relays of every commit held so far (once per engine)."""
        held, self._rows = self._rows, {}
        for engine, rows in held.items():
            _wake(engine, rows)


def hold(session: Any, held: Held) -> None:
    """Defer the wake-ups of ``session``'s commits (sync or async session) to ``held``."""
    session.info[_HOLD] = held


def _engine_of(session: Session) -> Engine | None:
    bind: Any = session.bind
    if bind is None:
        try:
            bind = session.get_bind()
        except UnboundExecutionError:
            return None
    if isinstance(bind, Connection):
        return bind.engine
    return bind if isinstance(bind, Engine) else None


def _after_commit(session: Session) -> None:
    rows: list[tuple[Any, ...]] = session.info.pop(_ROWS, None) or []
    if not session.info.pop(_FLAG, False):
        return
    engine = _engine_of(session)
    if engine is None:
        return
    held: Held | None = session.info.get(_HOLD)
    if held is not None:
        held.add(engine, rows)
        return
    _wake(engine, rows)


def _wake(engine: Engine, rows: Sequence[tuple[Any, ...]]) -> None:
    with _lock:
        callbacks = list(_callbacks.get(engine, ()))
    for callback in callbacks:
        callback(rows)


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
    session.info.pop(_ROWS, None)


def _install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _installed = True


def register(engine: Engine, callback: Callback) -> None:
    """Call ``callback`` after each commit on ``engine`` that enqueued events."""
    with _lock:
        _install()
        _callbacks.setdefault(engine, []).append(callback)


def unregister(engine: Engine, callback: Callback) -> None:
    with _lock:
        callbacks = _callbacks.get(engine)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)
