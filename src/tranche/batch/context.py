"""Execution contexts: the JSON key-value state a job or step persists between commits.

Values are JSON values plus ``datetime``, ``date`` and ``Decimal``, stored as tagged objects
(``{"$datetime": "..."}``) so they come back with their type; a value of any other type is
refused when it is put, with the key named, rather than when the chunk commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["ExecutionContext", "decode_value", "encode_value"]

_MISSING = object()


def encode_value(value: Any, where: str = "value") -> Any:
    """``value`` as plain JSON, or :class:`TypeError` naming ``where`` and the bad type."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(f"{where}: {value!r} has no JSON form")
        return value
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, list | tuple):
        return [encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: key {k!r} is not a string")
            out[k] = encode_value(v, f"{where}.{k}")
        return out
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored in an execution context")


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, raw),) = value.items()
            if tag == "$datetime":
                return datetime.fromisoformat(raw)
            if tag == "$date":
                return date.fromisoformat(raw)
            if tag == "$decimal":
                return Decimal(raw)
        return {k: decode_value(v) for k, v in value.items()}
    return value


class ExecutionContext(MutableMapping[str, Any]):
    """A dict whose values survive a restart; ``dirty`` says whether it needs saving."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = {}
        self.dirty = False
        for k, v in (values or {}).items():
            self[k] = v
        self.dirty = False

    def __getitem__(self, key: str) -> Any:
        return decode_value(self._values[key])

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"execution context keys are non-empty strings, got {key!r}")
        encoded = encode_value(value, key)
        if self._values.get(key, _MISSING) != encoded:
            self._values[key] = encoded
            self.dirty = True

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self.dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ExecutionContext({self.to_json()})"

    def to_json(self) -> str:
        return json.dumps(self._values, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> ExecutionContext:
        ctx = cls()
        if text:
            ctx._values = dict(json.loads(text))
        return ctx

    def copy(self) -> ExecutionContext:
        clone = ExecutionContext.from_json(self.to_json())
        clone.dirty = self.dirty
        return clone

    def restore(self, snapshot: ExecutionContext) -> None:
        """Become ``snapshot`` again (after a rolled-back chunk)."""
        self.restore_saved(snapshot.saved())

    def saved(self) -> tuple[str, bool]:
        """This context as :meth:`restore_saved` takes it back: its JSON and ``dirty``."""
        return self.to_json(), self.dirty

    def restore_saved(self, saved: tuple[str, bool]) -> None:
        text, self.dirty = saved
        self._values = dict(json.loads(text))
