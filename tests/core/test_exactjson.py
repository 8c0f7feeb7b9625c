"""parse_json reads every document as the standard library's json (the reference) does:
same values, same types, same refusals — whichever of its two decoders reads it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tranche.core.exactjson import MalformedJson, _reference, parse_json

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.text(),
)
_documents = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


def _encode(value: Any) -> str:
    """JSON text of ``value``, decimals as number literals (exponents included)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}: {_encode(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, Decimal):
        return str(a) == str(b)  # the literal's digits, not just its value
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(_documents)
def test_any_document_reads_as_the_reference_reads_it(value: Any) -> None:
    text = _encode(value)
    for body in (text, text.encode("utf-8", "surrogatepass")):
        assert _same(parse_json(body), _reference(body))


@pytest.mark.parametrize(
    "body",
    [
        b'{"q": 1234567890.12345678}',
        b'{"q": 1e400, "r": -1e-400, "s": 1E5}',
        b'{"id": 18446744073709551616, "v": -9223372036854775809, "w": 123456789012345678}',
        b'{"s": "000000000000000000000001", "t": "x 1234567890123456789"}',
        b'{"s": "\\ud800", "t": "a\\u0000b"}',
        b"\xef\xbb\xbf[1]",
        b'{"a": 1, "a": 2}',
    ],
)
def test_edge_documents_read_as_the_reference_reads_them(body: bytes) -> None:
    assert _same(parse_json(body), _reference(body))


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"NaN", b"[Infinity]", b"\xff\xfe\x00", b"[1] x", b"[" * 5000 + b"]" * 5000],
)
def test_what_the_reference_refuses_is_refused_with_its_message(body: bytes) -> None:
    with pytest.raises(MalformedJson) as fast:
        parse_json(body)
    with pytest.raises(MalformedJson) as reference:
        _reference(body)
    assert str(fast.value) == str(reference.value)
