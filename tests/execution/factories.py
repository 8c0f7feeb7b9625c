"""Test data: execution requests as the trade service sends them, valid and broken."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

_counter = itertools.count(1)

SECURITY = "68336002fe95851f0a2aeda9"

#: Field lists of the reference (globeco-contracts.md A3), the contract tests compare against.
EXECUTION_DTO_FIELDS = {
    "id",
    "executionStatus",
    "tradeType",
    "destination",
    "securityId",
    "ticker",
    "security",
    "quantity",
    "limitPrice",
    "receivedTimestamp",
    "sentTimestamp",
    "tradeServiceExecutionId",
    "quantityFilled",
    "averagePrice",
    "version",
}
SECURITY_FIELDS = {"securityId", "ticker"}
BATCH_RESPONSE_FIELDS = {"status", "message", "totalRequested", "successful", "failed", "results"}
RESULT_FIELDS = {"requestIndex", "status", "message", "execution"}
PAGE_FIELDS = {"content", "pagination"}
PAGINATION_FIELDS = {
    "offset",
    "limit",
    "totalElements",
    "totalPages",
    "currentPage",
    "hasNext",
    "hasPrevious",
}
ERROR_FIELDS = {"timestamp", "status", "error", "message", "path", "validationErrors"}


def next_id() -> int:
    """A fresh tradeServiceExecutionId: tests find their own rows by it."""
    return next(_counter) + 100_000


def item(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "executionStatus": "NEW",
        "tradeType": "BUY",
        "destination": "ML",
        "securityId": SECURITY,
        "quantity": 100,
        "limitPrice": 25.5,
        "tradeServiceExecutionId": next_id(),
        "version": 1,
    }
    body.update(overrides)
    return body


#: (change to a valid item, words the failure message must contain)
INVALID_CHANGES: list[tuple[dict[str, Any], str]] = [
    ({"executionStatus": None}, "Execution status is required"),
    ({"tradeType": "  "}, "Trade type is required"),
    ({"destination": ""}, "Destination is required"),
    ({"securityId": None}, "Security ID is required"),
    ({"quantity": None}, "Quantity is required"),
    ({"destination": "D" * 21}, "Destination cannot exceed 20 characters"),
    ({"securityId": "S" * 25}, "Security ID cannot exceed 24 characters"),
    ({"quantity": 0}, "Quantity must be greater than zero"),
    ({"quantity": -5}, "Quantity must be greater than zero"),
    ({"limitPrice": -1}, "Limit price must be greater than zero"),
    ({"tradeType": "SWAP"}, "Invalid trade type"),
    ({"executionStatus": "BOGUS"}, "Invalid execution status"),
    ({"quantity": "abc"}, "Quantity must be a number"),
    ({"quantity": 1e12}, "Quantity cannot exceed"),
    ({"quantity": Decimal("1.123456789")}, "Quantity cannot have more than 8 decimal places"),
    ({"tradeType": 5}, "Trade type must be a string"),
    ({"tradeServiceExecutionId": 2**40}, "Trade service execution ID"),
    ({"tradeServiceExecutionId": "x"}, "Trade service execution ID must be an integer"),
]


@st.composite
def valid_items(draw: st.DrawFn) -> dict[str, Any]:
    return item(
        tradeType=draw(st.sampled_from(["BUY", "SELL", "SHORT", "COVER", "EXRC"])),
        executionStatus=draw(st.sampled_from(["NEW", "SENT", "PART", "PENDING"])),
        destination=draw(st.sampled_from(["ML", "RBC", "JPM", "IB", "INST", "POSIT"])),
        quantity=draw(
            st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8)
        ),
        limitPrice=draw(
            st.none() | st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2)
        ),
    )


@st.composite
def invalid_items(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, len(INVALID_CHANGES)))
    if kind == len(INVALID_CHANGES):
        return draw(st.sampled_from([None, 7, "text", [1, 2]]))
    change, _ = INVALID_CHANGES[kind]
    return item(**change)


def mixed_batches(max_size: int = 30) -> st.SearchStrategy[list[tuple[bool, Any]]]:
    """Lists of (is_valid, item)."""
    one = st.one_of(
        valid_items().map(lambda i: (True, i)), invalid_items().map(lambda i: (False, i))
    )
    return st.lists(one, min_size=1, max_size=max_size)
