"""Resumable item readers: ``open(position)``, ``read()`` until ``None``, ``position()``.

The engine stores ``position()`` in the step's execution context with every chunk commit
and passes it back to ``open`` on restart, so a reader resumes right after the last
committed item. A position is any execution-context value (JSON, datetimes, decimals).

:class:`KeysetReader` pages through a SQLAlchemy query by its key (``WHERE key > last
ORDER BY key LIMIT n``), one short connection per page: no cursor or transaction is held
open across chunks, rows deleted by the job itself do not shift the pages (as they would
with OFFSET), and the position is simply the last key read. It is the one paged reader of
the code base: a job that completes its rows from other databases (which SQL cannot join)
passes ``map_page``, which turns a whole page into items with a few bulk lookups, and may
drop rows (already archived, say) by answering ``None`` for them.

Hand-written: SQLAlchemy has no resumable keyset pager, and the libraries that page by
keyset (sqlakeyset) are synchronous and know nothing of a restart position.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from itertools import compress
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar, overload, runtime_checkable

from sqlalchemy import ColumnElement, RowMapping, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "BufferedReader",
    "ItemReader",
    "KeysetReader",
    "ListReader",
    "PageMapper",
    "buffered_take",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: ``map_page``: a page's rows → one item per row, in order (``None``: leave the row out).
PageMapper = Callable[[Sequence[RowMapping]], Awaitable[Sequence[T | None]]]


@runtime_checkable
class ItemReader(Protocol[T_co]):
    async def open(self, position: Any | None) -> None:
        """Prepare to read after ``position`` (``None``: from the start)."""

    async def read(self) -> T_co | None:
        """The next item, or ``None`` when there are no more."""

    def position(self) -> Any:
        """Where the reader is: restarting with it resumes after the last item returned."""

    async def close(self) -> None:
        """Release what ``open`` acquired."""


@runtime_checkable
class BufferedReader(Protocol[T_co]):
    """A reader that can hand out what it already holds in memory, several items at once.

    ``take_buffered(n)`` returns up to ``n`` items exactly as ``n`` calls of ``read`` would
    (same items, same position afterwards) but only those needing no I/O, so it cannot
    fail: the chunk executor takes a chunk's items from the buffer in one call and calls
    ``read`` (retried, skippable) only to fetch. ``[]`` means "call ``read``".
    """

    def take_buffered(self, n: int) -> Sequence[T_co]: ...


def buffered_take(reader: ItemReader[T]) -> Callable[[int], Sequence[T]] | None:
    """``reader.take_buffered``, unless a subclass overrides ``read`` but not it.

    Such a subclass (a reader that fails or counts per item, say) means every item to go
    through its ``read``: the inherited ``take_buffered`` would skip it.
    """
    if not isinstance(reader, BufferedReader):
        return None
    mro = type(reader).__mro__
    reads = next(c for c in mro if "read" in c.__dict__)
    takes = next(c for c in mro if "take_buffered" in c.__dict__)
    return reader.take_buffered if issubclass(takes, reads) else None


class ListReader(Generic[T]):
    """Reads a list in order; the position is the index of the next item."""

    def __init__(self, items: Sequence[T]) -> None:
        self._items = list(items)
        self._next = 0

    async def open(self, position: Any | None) -> None:
        self._next = int(position or 0)

    async def read(self) -> T | None:
        if self._next >= len(self._items):
            return None
        item = self._items[self._next]
        self._next += 1
        return item

    def take_buffered(self, n: int) -> list[T]:
        items = self._items[self._next : self._next + n]
        self._next += len(items)
        return items

    def position(self) -> int:
        return self._next

    async def close(self) -> None:
        return None


def _after(key: Sequence[ColumnElement[Any]], last: Sequence[Any]) -> ColumnElement[bool]:
    """``key > last`` for a composite key, spelled as ORs so every database uses the index."""
    terms = []
    for i, column in enumerate(key):
        equal = [key[j] == last[j] for j in range(i)]
        terms.append(and_(*equal, column > last[i]))
    return or_(*terms)


class KeysetReader(Generic[T]):
    """Keyset pagination over ``query`` on ``engine`` (any of our databases).

    ``query`` must select the ``key`` columns and must not order itself: the reader orders by
    ``key``, which should be unique (a primary key, or a unique column list). Rows become
    items by ``map_row`` (one at a time), or by ``map_page`` (a page at a time, async, for
    bulk lookups; ``None`` drops a row); without either the item is the row. A failed page
    (query or ``map_page``) leaves the reader where it was, so a retried ``read`` fetches
    the same page again.
    """

    @overload
    def __init__(
        self: KeysetReader[RowMapping],
        engine: AsyncEngine,
        query: Select[Any],
        key: Sequence[ColumnElement[Any]],
        *,
        page_size: int = ...,
        map_row: None = None,
        map_page: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        engine: AsyncEngine,
        query: Select[Any],
        key: Sequence[ColumnElement[Any]],
        *,
        page_size: int = ...,
        map_row: Callable[[RowMapping], T],
        map_page: None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        engine: AsyncEngine,
        query: Select[Any],
        key: Sequence[ColumnElement[Any]],
        *,
        page_size: int = ...,
        map_row: None = None,
        map_page: PageMapper[T],
    ) -> None: ...

    def __init__(
        self,
        engine: AsyncEngine,
        query: Select[Any],
        key: Sequence[ColumnElement[Any]],
        *,
        page_size: int = 100,
        map_row: Callable[[RowMapping], Any] | None = None,
        map_page: PageMapper[Any] | None = None,
    ) -> None:
        if not key:
            raise ValueError("KeysetReader needs at least one key column")
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        if map_row is not None and map_page is not None:
            raise ValueError("KeysetReader takes map_row or map_page, not both")
        self._engine = engine
        self._query = query.order_by(None).order_by(*key)
        self._key = list(key)
        self._page_size = page_size
        self._map = map_row
        self._map_page = map_page
        self._last: Sequence[Any] | None = None
        #: Key of the last row fetched (handed out, buffered or dropped): the next page's start.
        self._fetched: Sequence[Any] | None = None
        # The fetched items not handed out yet, and their keys: ``_items[_next:]``. Two
        # lists and an index, so a chunk's items are one slice, not a pop per item.
        self._keys: list[Sequence[Any]] = []
        self._items: list[Any] = []
        self._next = 0
        self._exhausted = False
        #: A row's key values (a bare value for a single key), looked up in C, row by row.
        self._key_of = itemgetter(*self._key)

    async def open(self, position: Any | None) -> None:
        if position is not None and not isinstance(position, list) and len(self._key) == 1:
            position = [position]  # a single-key position saved as a bare value
        if position is not None and (
            not isinstance(position, list) or len(position) != len(self._key)
        ):
            raise ValueError(
                f"KeysetReader position must be a list of {len(self._key)} key values, "
                f"got {position!r}"
            )
        self._last = None if position is None else list(position)
        self._fetched = self._last
        self._keys, self._items, self._next = [], [], 0
        self._exhausted = False

    async def read(self) -> T | None:
        while self._next >= len(self._items) and not self._exhausted:
            await self._fetch()
        if self._next >= len(self._items):
            return None
        item = self._items[self._next]
        self._last = self._keys[self._next]
        self._next += 1
        return item  # type: ignore[no-any-return]

    def take_buffered(self, n: int) -> list[T]:
        start = self._next
        taken: list[T] = self._items[start : start + n]
        if taken:
            self._next = start + len(taken)
            self._last = self._keys[self._next - 1]
        return taken

    def position(self) -> list[Any] | None:
        return None if self._last is None else list(self._last)

    async def ahead(self, n: int) -> list[T]:
        """The next ``n`` items (fewer at the end), without reading them: the position stays.

        For a writer that must record what the next chunk will hold before it runs (fetching
        a page early changes nothing of what ``read`` returns).
        """
        while len(self._items) - self._next < n and not self._exhausted:
            await self._fetch()
        return self._items[self._next : self._next + n]

    async def close(self) -> None:
        self._keys, self._items, self._next = [], [], 0

    async def _fetch(self) -> None:
        stmt = self._query
        if self._fetched is not None:
            stmt = stmt.where(_after(self._key, self._fetched))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(stmt.limit(self._page_size))).mappings().all()
        # map() with itemgetter: no Python call per row (a page is 1 000 rows for tokens).
        try:
            found = list(map(self._key_of, rows))
        except KeyError:
            raise ValueError(
                f"KeysetReader: the query must select its key columns {[str(c) for c in self._key]}"
            ) from None
        keys: list[Sequence[Any]] = [(k,) for k in found] if len(self._key) == 1 else found
        if self._map_page is not None:
            items: list[Any] = list(await self._map_page(rows)) if rows else []
            if len(items) != len(rows):
                raise ValueError("KeysetReader: map_page must answer one item per row")
        elif self._map is not None:
            items = list(map(self._map, rows))
        else:
            items = list(rows)
        # Only now, with the whole page mapped: a failure above left the reader unchanged.
        if keys:
            self._fetched = keys[-1]
        kept = [item is not None for item in items]
        if not all(kept):
            keys, items = list(compress(keys, kept)), list(compress(items, kept))
        # What was handed out goes; what is left stays first.
        del self._keys[: self._next], self._items[: self._next]
        self._keys += keys
        self._items += items
        self._next = 0
        self._exhausted = len(rows) < self._page_size
