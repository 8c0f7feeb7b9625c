"""Wakes the relays of a database when a session that enqueued events commits.

:func:`mark` flags the session (``session.info``); one ``after_commit`` listener
on the Session class finds the session's engine and calls every relay
registered for it, so services never call ``notify()`` themselves and the
commit-to-broker latency is not a poll interval. A rolled-back session wakes
nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import UnboundExecutionError
from sqlalchemy.orm import Session

__all__ = ["mark", "register", "unregister"]

_FLAG = "tranche.outbox.enqueued"
_lock = threading.Lock()
_callbacks: WeakKeyDictionary[Engine, list[Callable[[], None]]] = WeakKeyDictionary()
_installed = False


def mark(session: Any) -> None:
    """Record that ``session`` (sync or async) wrote outbox rows in its current transaction."""
    session.info[_FLAG] = True


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
    if not session.info.pop(_FLAG, False):
        return
    engine = _engine_of(session)
    if engine is None:
        return
    with _lock:
        callbacks = list(_callbacks.get(engine, ()))
    for callback in callbacks:
        callback()


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


def _install() -> None:
    global _installed
    if not _installed:
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _installed = True


def register(engine: Engine, callback: Callable[[], None]) -> None:
    """Call ``callback`` after each commit on ``engine`` that enqueued events."""
    with _lock:
        _install()
        _callbacks.setdefault(engine, []).append(callback)


def unregister(engine: Engine, callback: Callable[[], None]) -> None:
    with _lock:
        callbacks = _callbacks.get(engine)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)
