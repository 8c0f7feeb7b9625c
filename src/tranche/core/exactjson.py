"""JSON with exact decimals: numbers with a fraction are read as :class:`~decimal.Decimal`
and :class:`~decimal.Decimal` values are written digit for digit.

The standard decoders read ``9999999999.99999999`` as the float ``1e10``; a quantity of
``decimal(18,8)`` must survive a round trip unchanged, so bodies are decoded with
``parse_float=Decimal`` and encoded with orjson, a decimal becoming a raw JSON number
(``orjson.Fragment``) rather than a float or a string.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["MalformedJson", "dumps", "parse_json"]


class MalformedJson(json.JSONDecodeError):
    """The body is not JSON, or uses NaN/Infinity, which JSON does not have.

    A :class:`json.JSONDecodeError`, so FastAPI's body reader answers it with its
    ``json_invalid`` validation error (a 400 naming the body).
    """


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number", name, 0)


def _parse_int(text: str) -> int | Decimal:
    # Beyond 64 bits an integer cannot be a valid value anyway; as a Decimal it reaches the
    # validator (which names the field) instead of tripping the JSON encoders.
    return int(text) if len(text) < 19 else Decimal(text)


def parse_json(body: bytes | str) -> Any:
    """Decode a JSON document, numbers with a fraction or exponent as exact decimals."""
    try:
        return json.loads(
            body, parse_float=Decimal, parse_int=_parse_int, parse_constant=_reject_constant
        )
    except MalformedJson:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedJson(exc.msg, exc.doc, exc.pos) from None
    except UnicodeDecodeError as exc:
        raise MalformedJson(f"not UTF-8: {exc.reason}", "", exc.start) from None
    except RecursionError:
        raise MalformedJson("nested too deeply", "", 0) from None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes with exact decimals and ``...Z`` UTC timestamps."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z)
