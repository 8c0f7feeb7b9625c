"""The one rule every service applies to request texts before they reach a database."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tranche.core.storable import storable, unstorable_reason


# Hypothesis leaves surrogates (category Cs) out of text() unless asked for them.
@given(st.text(st.characters(exclude_categories=())))
def test_storable_exactly_when_utf8_encodable_without_nul(text: str) -> None:
    try:
        text.encode("utf-8")
        encodable = "\x00" not in text
    except UnicodeEncodeError:
        encodable = False
    assert storable(text) is encodable


def test_reasons_name_what_cannot_be_stored() -> None:
    assert unstorable_reason("M\x00L") == "NUL"
    assert unstorable_reason("ML\ud800") == "an unpaired surrogate"
    assert unstorable_reason("Société Générale") is None
    assert unstorable_reason("") is None
