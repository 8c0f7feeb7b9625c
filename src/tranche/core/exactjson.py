"""JSON with exact decimals: numbers with a fraction are read as :class:`~decimal.Decimal`
and :class:`~decimal.Decimal` values are written digit for digit.

The standard decoders read ``9999999999.99999999`` as the float ``1e10``; a quantity of
``decimal(18,8)`` must survive a round trip unchanged, so bodies are decoded with
each fraction or exponent handed to ``Decimal`` as text, and encoded with orjson, a
decimal becoming a raw JSON number (``orjson.Fragment``) rather than a float or a string.

Two decoders, one meaning. msgspec (``float_hook=Decimal``, the literal's text to
``Decimal``) reads a 1 000-item batch about eight times faster than the standard
library's ``json`` with ``parse_float``; ``json`` stays the reference and reads every
document msgspec refuses or would read differently: malformed or non-UTF-8 bodies (so a
400's message is the one ``json`` gives, and a UTF-8 BOM is accepted as before), lone
surrogates (``"\\ud800"`` is a string to ``json``, which the validators then refuse
naming the field; msgspec refuses the whole body), ``NaN``/``Infinity``, nesting too
deep, and integers of 18 digits or more (``json`` hands those to :func:`_parse_int`,
which keeps them as decimals beyond 64 bits; a pre-scan of the body finds them).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
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


_FAST = msgspec.json.Decoder(float_hook=Decimal)
#: The pre-scan for integer literals of 18 digits or more (with a sign, 19 characters: what
#: :func:`_parse_int` may keep as a Decimal): each byte mapped to its class — ``0`` a
#: digit, ``p`` what can stand before a number (``:`` ``[`` ``,`` ``-`` blanks), ``x`` the
#: rest — so that one substring search finds them (a regular expression costs more than
#: msgspec's whole decode). Digits inside a string match too when a blank or one of those
#: characters precedes them; such bodies merely take the reference decoder.
_CLASSES = bytes(
    ord("0") if chr(c).isdigit() and c < 128 else ord("p") if chr(c) in ":[,- \t\r\n" else ord("x")
    for c in range(256)
)
_LONG_DIGITS = b"0" * 18
_LONG_NUMBER = b"p" + _LONG_DIGITS


def _long_integer(body: bytes) -> bool:
    classes = body.translate(_CLASSES)
    return _LONG_NUMBER in classes or classes.startswith(_LONG_DIGITS)


def _reference(body: bytes | str) -> Any:
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


def parse_json(body: bytes | str) -> Any:
    """Decode a JSON document, numbers with a fraction or exponent as exact decimals."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if not _long_integer(raw):
        try:
            return _FAST.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            pass  # the reference decoder says what is wrong, or reads what msgspec cannot
    return _reference(body)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} is not a JSON number")
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes with exact decimals and ``...Z`` UTC timestamps."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z)
