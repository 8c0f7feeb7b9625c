"""The rules a new execution and a fill must pass before anything is written.

The order of the checks and their messages are the original batch validator's
(reference A7.2), so a client matching on the text keeps working; the allowed
trade types and statuses are settings (the original's two-value lists rejected
what the trade service sends, its bug C1/C2). Ours adds what the original left
to the database (and answered with 500): wrong JSON types, numbers that do not
fit ``decimal(18,8)``, ids that do not fit an ``integer`` column, and text neither
database can hold (NUL, unpaired surrogates).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from tranche.execution.models import EIGHT_PLACES
from tranche.execution.schemas import ExecutionPostIn, ExecutionPutIn

__all__ = [
    "UNSTORABLE_MESSAGE",
    "Invalid",
    "NewExecution",
    "Rules",
    "ValidFill",
    "storable",
    "validate_fill",
    "validate_filters",
    "validate_item",
]

MAX_INT32 = 2**31 - 1
MAX_QUANTITY = Decimal("9999999999.99999999")
_MIN_QUANTITY = -MAX_QUANTITY

_LABELS = {
    "executionStatus": "Execution status",
    "tradeType": "Trade type",
    "destination": "Destination",
    "securityId": "Security ID",
    "quantity": "Quantity",
    "limitPrice": "Limit price",
    "tradeServiceExecutionId": "Trade service execution ID",
    "version": "Version",
    "quantityFilled": "Quantity filled",
    "averagePrice": "Average price",
}
_MAX_LENGTHS = (("executionStatus", 20), ("tradeType", 10), ("destination", 20), ("securityId", 24))
_KIND = {
    "string_type": "must be a string",
    "decimal_type": "must be a number",
    "decimal_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_parsing_size": "must be a 32-bit integer",
    "int_from_float": "must be an integer",
    "missing": "is required",
}


@dataclass(frozen=True)
class Rules:
    """Allowed values, case-sensitive as in the original."""

    trade_types: Sequence[str]
    statuses: Sequence[str]


@dataclass(frozen=True, slots=True)
class NewExecution:
    """A validated create request, normalised to what the row will hold."""

    execution_status: str
    trade_type: str
    destination: str
    security_id: str
    quantity: Decimal
    limit_price: Decimal | None
    trade_service_execution_id: int | None


@dataclass(frozen=True)
class Invalid:
    """Why a request was refused; ``field`` is the JSON name (``body`` for the whole)."""

    field: str
    message: str


@dataclass(frozen=True)
class ValidFill:
    quantity_filled: Decimal
    average_price: Decimal | None
    version: int


UNSTORABLE_MESSAGE = "contains a character that cannot be stored (NUL or an unpaired surrogate)"


def storable(text: str) -> bool:
    """Whether both databases can hold ``text``: PostgreSQL refuses NUL in text columns and
    a lone surrogate (which JSON's ``\\ud800`` escape can produce) has no UTF-8 encoding."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_filters(filters: Mapping[str, str | None]) -> Invalid | None:
    """The list endpoint's text parameters (by their query names): a value no row can hold
    would otherwise reach the database, which refuses NUL in a bound parameter."""
    for name, value in filters.items():
        if value is not None and not storable(value):
            return Invalid(name, f"{name} {UNSTORABLE_MESSAGE}")
    return None


def _type_error(exc: ValidationError) -> Invalid:
    err = exc.errors()[0]
    loc = err.get("loc") or ("body",)
    field = str(loc[0])
    label = _LABELS.get(field, field)
    return Invalid(field, f"{label} {_KIND.get(err['type'], str(err['msg']))}")


def _amount(field: str, value: Decimal) -> tuple[Decimal, Invalid | None]:
    label = _LABELS[field]
    if not _MIN_QUANTITY <= value <= MAX_QUANTITY:
        return value, Invalid(field, f"{label} cannot exceed {MAX_QUANTITY}")
    quantized = value.quantize(EIGHT_PLACES)
    # Exact unless digits beyond the 8th decimal are not zero (within the bound, quantize
    # never runs out of precision).
    if quantized != value:
        return value, Invalid(field, f"{label} cannot have more than 8 decimal places")
    return quantized, None


_Fields = tuple[
    str | None,
    str | None,
    str | None,
    str | None,
    Decimal | None,
    Decimal | None,
    int | None,
    int | None,
]
_UNSET = object()


def _plain_number(value: Any) -> Any:
    """``value`` as the Decimal pydantic would make of it, or _UNSET to let pydantic judge."""
    kind = type(value)
    if kind is Decimal:
        return value if value.is_finite() else _UNSET
    if kind is int:
        return Decimal(value)
    return None if value is None else _UNSET


def _plain_fields(raw: dict[str, Any]) -> _Fields | None:
    """The fields of an item whose JSON types are already right — what almost every item
    of a batch looks like — without the cost of a pydantic model per item. None: some
    value needs pydantic, to be coerced or to be refused with the field named."""
    get = raw.get
    status, trade_type = get("executionStatus"), get("tradeType")
    destination, security_id = get("destination"), get("securityId")
    for text in (status, trade_type, destination, security_id):
        if text is not None and type(text) is not str:
            return None
    quantity, limit_price = _plain_number(get("quantity")), _plain_number(get("limitPrice"))
    if quantity is _UNSET or limit_price is _UNSET:
        return None
    tsid, version = get("tradeServiceExecutionId"), get("version")
    for number in (tsid, version):
        if number is not None and (type(number) is not int or not -(2**63) <= number < 2**63):
            return None
    return status, trade_type, destination, security_id, quantity, limit_price, tsid, version


def _model_fields(raw: Mapping[str, Any]) -> _Fields | Invalid:
    try:
        item = ExecutionPostIn.model_validate(raw)
    except ValidationError as exc:
        return _type_error(exc)
    return (
        item.executionStatus,
        item.tradeType,
        item.destination,
        item.securityId,
        item.quantity,
        item.limitPrice,
        item.tradeServiceExecutionId,
        item.version,
    )


def validate_item(raw: Any, rules: Rules) -> NewExecution | Invalid:
    """Check one create request; the first failure wins, as in the original."""
    if raw is None:
        return Invalid("execution", "Execution request cannot be null")
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return Invalid("execution", "Execution request must be a JSON object")
    fields = _plain_fields(raw) if type(raw) is dict else None
    if fields is None:
        checked = _model_fields(raw)
        if isinstance(checked, Invalid):
            return checked
        fields = checked
    status, trade_type, destination, security_id, quantity, limit_price, tsid, version = fields
    texts = (
        ("executionStatus", status),
        ("tradeType", trade_type),
        ("destination", destination),
        ("securityId", security_id),
    )
    for field, text in texts:
        if text is None or not text.strip():
            return Invalid(field, f"{_LABELS[field]} is required")
        if not storable(text):
            return Invalid(field, f"{_LABELS[field]} {UNSTORABLE_MESSAGE}")
    if quantity is None:
        return Invalid("quantity", "Quantity is required")
    for (field, text), (_, limit) in zip(texts, _MAX_LENGTHS, strict=True):
        if len(text or "") > limit:
            return Invalid(field, f"{_LABELS[field]} cannot exceed {limit} characters")
    if quantity <= 0:
        return Invalid("quantity", "Quantity must be greater than zero")
    if limit_price is not None and limit_price <= 0:
        return Invalid("limitPrice", "Limit price must be greater than zero when specified")
    quantity, problem = _amount("quantity", quantity)
    if problem:
        return problem
    if limit_price is not None:
        limit_price, problem = _amount("limitPrice", limit_price)
        if problem:
            return problem
    if tsid is not None and not 0 <= tsid <= MAX_INT32:
        return Invalid(
            "tradeServiceExecutionId",
            "Trade service execution ID must be a non-negative 32-bit integer",
        )
    if version is not None and not -MAX_INT32 - 1 <= version <= MAX_INT32:
        return Invalid("version", "Version must be a 32-bit integer")
    if trade_type not in rules.trade_types:
        allowed = ", ".join(rules.trade_types)
        return Invalid("tradeType", f"Invalid trade type. Must be one of {allowed}")
    if status not in rules.statuses:
        allowed = ", ".join(rules.statuses)
        return Invalid("executionStatus", f"Invalid execution status. Must be one of {allowed}")
    assert status is not None
    assert trade_type is not None
    assert destination is not None
    assert security_id is not None
    return NewExecution(
        execution_status=status,
        trade_type=trade_type,
        destination=destination,
        # char(24): PostgreSQL pads and compares without trailing blanks; so do we.
        security_id=security_id.rstrip(" "),
        quantity=quantity,
        limit_price=limit_price,
        trade_service_execution_id=tsid,
    )


def validate_fill(raw: Any) -> ValidFill | Invalid:
    """Check a PUT body on its own; the comparison with the stored quantity comes later."""
    if not isinstance(raw, Mapping):
        return Invalid("body", "Request body must be a JSON object")
    try:
        fill = ExecutionPutIn.model_validate(raw)
    except ValidationError as exc:
        return _type_error(exc)
    if fill.quantityFilled < 0:
        return Invalid("quantityFilled", "Quantity filled cannot be negative")
    quantity_filled, problem = _amount("quantityFilled", fill.quantityFilled)
    if problem:
        return problem
    average_price = None
    if fill.averagePrice is not None:
        if fill.averagePrice < 0:
            return Invalid("averagePrice", "Average price cannot be negative")
        average_price, problem = _amount("averagePrice", fill.averagePrice)
        if problem:
            return problem
    if not -MAX_INT32 - 1 <= fill.version <= MAX_INT32:
        return Invalid("version", "Version must be a 32-bit integer")
    return ValidFill(quantity_filled, average_price, fill.version)
