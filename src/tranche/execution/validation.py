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
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import ValidationError

from tranche.core.storable import UNSTORABLE_MESSAGE, storable
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
_TEXT_FIELDS = ("executionStatus", "tradeType", "destination", "securityId")
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
    """Allowed values, case-sensitive as in the original.

    Also the memo of :func:`validate_item`'s checks that depend on one value each
    (:class:`_Memo`): a batch repeats a few statuses, trade types, destinations and
    securities, and its quantities, so each distinct value is checked once.
    """

    trade_types: Sequence[str]
    statuses: Sequence[str]
    memo: _Memo = field(default_factory=lambda: _Memo(), compare=False, repr=False)


class NewExecution(NamedTuple):
    """A validated create request, normalised to what the row will hold (a tuple: one is
    made per batch item, and a frozen dataclass costs a ``__setattr__`` call per field)."""

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


_Texts = tuple[str | None, str | None, str | None, str | None]
#: What the text fields of an item give: the first failure of each of the three checks
#: that look at them (required and storable; length; allowed value), in the original's
#: order between the number checks, and the security id as stored.
_TextVerdict = tuple[Invalid | None, Invalid | None, Invalid | None, str]
#: (not positive, the value at scale 8, not a ``decimal(18,8)``) of a quantity or limit price.
_Number = tuple[Invalid | None, Decimal, Invalid | None]
#: Entries each memo keeps before starting afresh (a bound against hostile variety).
_MEMO_LIMIT = 4096


class _Memo:
    """Verdicts by value. Safe to share: each depends on the value and the rules alone
    (messages never quote the value), and ``1`` and ``1.0`` (equal, same hash) give the
    same quantised amount."""

    __slots__ = ("numbers", "texts")

    def __init__(self) -> None:
        self.texts: dict[_Texts, _TextVerdict] = {}
        self.numbers: dict[tuple[str, Decimal | int], _Number] = {}


def _check_texts(texts: _Texts, rules: Rules) -> _TextVerdict:
    status, trade_type, _destination, security_id = texts
    required = too_long = not_allowed = None
    for name, text in zip(_TEXT_FIELDS, texts, strict=True):
        if text is None or not text.strip():
            required = Invalid(name, f"{_LABELS[name]} is required")
        elif not storable(text):
            required = Invalid(name, f"{_LABELS[name]} {UNSTORABLE_MESSAGE}")
        if required is not None:
            break
    for (name, limit), text in zip(_MAX_LENGTHS, texts, strict=True):
        if len(text or "") > limit:
            too_long = Invalid(name, f"{_LABELS[name]} cannot exceed {limit} characters")
            break
    if trade_type not in rules.trade_types:
        allowed = ", ".join(rules.trade_types)
        not_allowed = Invalid("tradeType", f"Invalid trade type. Must be one of {allowed}")
    elif status not in rules.statuses:
        allowed = ", ".join(rules.statuses)
        message = f"Invalid execution status. Must be one of {allowed}"
        not_allowed = Invalid("executionStatus", message)
    # char(24): PostgreSQL pads and compares without trailing blanks; so do we.
    return required, too_long, not_allowed, (security_id or "").rstrip(" ")


def _texts_verdict(texts: _Texts, rules: Rules) -> _TextVerdict:
    memo = rules.memo.texts
    verdict = memo.get(texts)
    if verdict is None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        verdict = memo[texts] = _check_texts(texts, rules)
    return verdict


def _check_number(name: str, value: Decimal) -> _Number:
    """(not positive, the value at scale 8, not a ``decimal(18,8)``) of a finite number."""
    if value <= 0:
        if name == "quantity":
            return Invalid(name, "Quantity must be greater than zero"), value, None
        return Invalid(name, "Limit price must be greater than zero when specified"), value, None
    return None, *_amount(name, value)


def _number_verdict(name: str, value: Decimal | int, rules: Rules) -> _Number:
    memo = rules.memo.numbers
    key = (name, value)
    verdict = memo.get(key)
    if verdict is None:
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        verdict = memo[key] = _check_number(name, Decimal(value))
    return verdict


def _plain_number_verdict(name: str, value: Any, rules: Rules) -> _Number | None:
    """The verdict on a JSON number already of the right type (an int, a finite Decimal);
    None when pydantic must read it."""
    kind = type(value)
    if kind is int or (kind is Decimal and value.is_finite()):
        return _number_verdict(name, value, rules)
    return None


def _plain_int(value: Any) -> bool:
    return value is None or (type(value) is int and -(2**63) <= value < 2**63)


def _validate_plain(raw: dict[str, Any], rules: Rules) -> NewExecution | Invalid | None:
    """:func:`validate_item` of an item whose JSON types are already right — what almost
    every item of a batch looks like — from the memo's verdicts; None when some value
    needs pydantic (to be coerced, or refused with the field named)."""
    get = raw.get
    texts: tuple[Any, Any, Any, Any] = (
        get("executionStatus"),
        get("tradeType"),
        get("destination"),
        get("securityId"),
    )
    try:
        verdict = rules.memo.texts.get(texts)
    except TypeError:  # a list or an object where text belongs: refused by the general path
        return None
    if verdict is None:  # a hit means four texts already checked to be strings or null
        if any(text is not None and type(text) is not str for text in texts):
            return None
        verdict = _texts_verdict(texts, rules)
    required, too_long, not_allowed, stored_id = verdict
    quantity, limit_price = get("quantity"), get("limitPrice")
    tsid, version = get("tradeServiceExecutionId"), get("version")
    q = None if quantity is None else _plain_number_verdict("quantity", quantity, rules)
    lp = None if limit_price is None else _plain_number_verdict("limitPrice", limit_price, rules)
    if (
        (q is None and quantity is not None)
        or (lp is None and limit_price is not None)
        or not _plain_int(tsid)
        or not _plain_int(version)
    ):
        return None
    if required is not None:
        return required
    if q is None:
        return Invalid("quantity", "Quantity is required")
    if too_long is not None:
        return too_long
    if q[0] is not None:
        return q[0]
    if lp is not None and lp[0] is not None:
        return lp[0]
    if q[2] is not None:
        return q[2]
    if lp is not None and lp[2] is not None:
        return lp[2]
    if tsid is not None and not 0 <= tsid <= MAX_INT32:
        return Invalid(
            "tradeServiceExecutionId",
            "Trade service execution ID must be a non-negative 32-bit integer",
        )
    if version is not None and not -MAX_INT32 - 1 <= version <= MAX_INT32:
        return Invalid("version", "Version must be a 32-bit integer")
    if not_allowed is not None:
        return not_allowed
    status, trade_type, destination, _ = texts
    return NewExecution(
        status, trade_type, destination, stored_id, q[1], None if lp is None else lp[1], tsid
    )


def validate_item(raw: Any, rules: Rules) -> NewExecution | Invalid:
    """Check one create request; the first failure wins, as in the original."""
    if type(raw) is dict:
        plain = _validate_plain(raw, rules)
        if plain is not None:
            return plain
    if raw is None:
        return Invalid("execution", "Execution request cannot be null")
    if type(raw) is not dict and not isinstance(raw, Mapping):
        return Invalid("execution", "Execution request must be a JSON object")
    # Here only what the plain path could not read: coerced or refused by pydantic.
    fields = _model_fields(raw)
    if isinstance(fields, Invalid):
        return fields
    status, trade_type, destination, security_id, quantity, limit_price, tsid, version = fields
    required, too_long, not_allowed, stored_id = _texts_verdict(
        (status, trade_type, destination, security_id), rules
    )
    if required is not None:
        return required
    if quantity is None:
        return Invalid("quantity", "Quantity is required")
    if too_long is not None:
        return too_long
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
    if not_allowed is not None:
        return not_allowed
    assert status is not None
    assert trade_type is not None
    assert destination is not None
    return NewExecution(status, trade_type, destination, stored_id, quantity, limit_price, tsid)


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
