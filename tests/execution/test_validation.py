"""The create and fill rules on their own (no database)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.execution.factories import INVALID_CHANGES, item
from tranche.execution.schemas import MalformedJson, parse_json
from tranche.execution.settings import DEFAULT_STATUSES, DEFAULT_TRADE_TYPES
from tranche.execution.validation import (
    Invalid,
    NewExecution,
    Rules,
    ValidFill,
    validate_fill,
    validate_item,
)

RULES = Rules(DEFAULT_TRADE_TYPES, DEFAULT_STATUSES)


@pytest.mark.parametrize(("change", "words"), INVALID_CHANGES)
def test_each_rule_names_the_field(change: dict[str, Any], words: str) -> None:
    result = validate_item(item(**change), RULES)
    assert isinstance(result, Invalid)
    assert words in result.message
    assert result.field in change


def test_first_failure_wins_in_the_original_order() -> None:
    result = validate_item(item(executionStatus=None, quantity=-1, tradeType="X"), RULES)
    assert result == Invalid("executionStatus", "Execution status is required")
    result = validate_item(item(quantity=-1, tradeType="X"), RULES)
    assert result == Invalid("quantity", "Quantity must be greater than zero")


def test_null_and_non_object_items() -> None:
    assert validate_item(None, RULES) == Invalid("execution", "Execution request cannot be null")
    assert isinstance(validate_item([1], RULES), Invalid)


def test_valid_item_is_normalised_to_eight_places() -> None:
    result = validate_item(item(quantity=Decimal("10.5"), limitPrice=None), RULES)
    assert isinstance(result, NewExecution)
    assert str(result.quantity) == "10.50000000"
    assert result.limit_price is None
    trailing = validate_item(item(quantity=Decimal("1.000000000000")), RULES)
    assert isinstance(trailing, NewExecution)


def test_allowed_values_are_case_sensitive_settings() -> None:
    assert isinstance(validate_item(item(tradeType="buy"), RULES), Invalid)
    narrow = Rules(("BUY",), ("NEW",))
    assert isinstance(validate_item(item(tradeType="SELL"), narrow), Invalid)
    message = validate_item(item(tradeType="SELL"), narrow)
    assert isinstance(message, Invalid) and message.message.endswith("Must be one of BUY")


def test_fill_rules() -> None:
    assert validate_fill({"quantityFilled": 5, "averagePrice": 2, "version": 1}) == ValidFill(
        Decimal("5.00000000"), Decimal("2.00000000"), 1
    )
    assert validate_fill({"quantityFilled": 5, "version": 1}) == ValidFill(
        Decimal("5.00000000"), None, 1
    )
    cases = [
        ({"quantityFilled": -1, "version": 1}, "quantityFilled"),
        ({"quantityFilled": 1, "averagePrice": -1, "version": 1}, "averagePrice"),
        ({"quantityFilled": 1}, "version"),
        ({"version": 1}, "quantityFilled"),
        ({"quantityFilled": "x", "version": 1}, "quantityFilled"),
        ({"quantityFilled": 1, "version": 2**40}, "version"),
        ({"quantityFilled": 10**12, "version": 1}, "quantityFilled"),
    ]
    for body, field in cases:
        result = validate_fill(body)
        assert isinstance(result, Invalid), body
        assert result.field == field
    assert isinstance(validate_fill([1]), Invalid)


def test_json_is_decoded_with_exact_decimals() -> None:
    assert parse_json(b'{"q": 1234567890.12345678}') == {"q": Decimal("1234567890.12345678")}
    for bad in (b'{"q": ', b'{"q": NaN}', b"\xff", b"[" * 100_000):
        with pytest.raises(MalformedJson):
            parse_json(bad)
