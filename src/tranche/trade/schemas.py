"""JSON shapes of the trade service's API, field for field as the original.

Quantities and prices are JSON numbers, except in ``ExecutionResponseDTO`` where
the original sent them as two-decimal strings (``"100.00"``). Numbers are exact:
bodies are decoded with decimals (:mod:`tranche.core.exactjson`) and responses
are dumped in Python mode, where a ``Number`` stays a :class:`~decimal.Decimal`
for the exact encoder (only a JSON-mode dump, e.g. FastAPI's, goes through float).
Request bodies are validated here so a bad field is a 400 naming it, before anything is written.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from tranche.core.storable import unstorable_reason

__all__ = [
    "MAX_BATCH_SUBMISSIONS",
    "MAX_BULK_TRADE_ORDERS",
    "BatchSubmitRequest",
    "BatchSubmitResponse",
    "BatchSubmitResult",
    "BlotterResponse",
    "BlotterUpdate",
    "BlotterWrite",
    "BulkTradeOrderRequest",
    "BulkTradeOrderResponse",
    "BulkTradeOrderResult",
    "CodeResponse",
    "CodeUpdate",
    "CodeWrite",
    "ExecutionCreate",
    "ExecutionResponse",
    "ExecutionUpdate",
    "FillRequest",
    "TradeOrderCreate",
    "TradeOrderResponse",
    "TradeOrderSubmission",
    "TradeOrderSubmit",
    "TradeOrderUpdate",
    "two_places",
]

MAX_BATCH_SUBMISSIONS = 100
MAX_BULK_TRADE_ORDERS = 1000
ORDER_TYPES = ("BUY", "SELL", "SHORT", "COVER", "EXRC")
_TWO_PLACES = Decimal("0.01")


def two_places(value: Decimal) -> str:
    """``Decimal("100")`` → ``"100.00"``, rounding half up as the original's serializer."""
    return format(value.quantize(_TWO_PLACES, rounding=ROUND_HALF_UP), "f")


def _as_number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


# decimal(18,8): at most ten digits before the point and eight after.
Amount = Annotated[Decimal, Field(max_digits=18, decimal_places=8)]
Positive = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=8)]
NonNegative = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=8)]
Number = Annotated[Decimal, PlainSerializer(_as_number, return_type=float | int, when_used="json")]
TwoPlaces = Annotated[Decimal, PlainSerializer(two_places, return_type=str)]
Id = Annotated[int, Field(ge=1, le=2_147_483_647)]


def _storable(value: str) -> str:
    """Refuse what no database column can hold (:mod:`tranche.core.storable`)."""
    why = unstorable_reason(value)
    if why is not None:
        raise ValueError(f"contains a character that cannot be stored ({why})")
    return value


def _fits_utc(value: datetime) -> datetime:
    """Refuse an instant outside years 1-9999 once its offset is applied
    (``0001-01-01T00:00:00+14:00``): it parses, but storing it overflowed into a 500."""
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
Text24 = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=24),
    AfterValidator(_storable),
]
Timestamp = Annotated[datetime, AfterValidator(_fits_utc)]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class BlotterResponse(_Camel):
    id: int
    abbreviation: str
    name: str
    version: int


class CodeResponse(_Camel):
    """TradeTypeResponseDTO, ExecutionStatusResponseDTO and DestinationResponseDTO."""

    id: int
    abbreviation: str
    description: str
    version: int


Abbreviation = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
Version = Annotated[int, Field(ge=0, le=2_147_483_647)]


class BlotterWrite(_Camel):
    abbreviation: Abbreviation
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class BlotterUpdate(BlotterWrite):
    version: Version


class CodeWrite(_Camel):
    """A trade type, execution status or destination (trade types: abbreviation ≤ 10)."""

    abbreviation: Abbreviation
    description: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)
    ]


class CodeUpdate(CodeWrite):
    version: Version


class TradeOrderResponse(_Camel):
    id: int
    order_id: int
    portfolio_id: str
    order_type: str
    security_id: str
    quantity: Number
    quantity_sent: Number
    limit_price: Number | None
    trade_timestamp: datetime
    blotter: BlotterResponse | None
    submitted: bool
    version: int


class ExecutionResponse(_Camel):
    id: int
    execution_timestamp: datetime
    execution_status: CodeResponse
    blotter: BlotterResponse | None
    trade_type: CodeResponse | None
    trade_order: TradeOrderResponse
    destination: CodeResponse
    quantity_ordered: TwoPlaces
    quantity_placed: TwoPlaces
    quantity_filled: TwoPlaces
    limit_price: TwoPlaces | None
    #: Ours: the fill price the execution service reports (the original dropped it).
    average_price: TwoPlaces | None
    version: int
    execution_service_id: int | None


class TradeOrderCreate(_Camel):
    order_id: Id
    portfolio_id: Text24
    order_type: Text = Field(description="BUY, SELL, SHORT, COVER or EXRC")
    security_id: Text24
    quantity: Positive
    limit_price: Positive | None = None
    trade_timestamp: Timestamp | None = None
    blotter_id: Id | None = None

    @field_validator("order_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        normal = value.strip().upper()
        if normal not in ORDER_TYPES:
            raise ValueError(f"must be one of {', '.join(ORDER_TYPES)}")
        return normal


class BulkTradeOrderRequest(_Camel):
    """BulkTradeOrderRequestDTO: 1-1000 TradeOrderPostDTOs created all or nothing.

    The items are taken as they come and validated one by one by the bulk creation, so
    a bad item is reported in the original's BulkTradeOrderResponseDTO (that item's
    result names what is wrong) instead of as a request-level error; the document
    still shows them as TradeOrderCreate.
    """

    trade_orders: Annotated[
        list[Any],
        Field(min_length=1, max_length=MAX_BULK_TRADE_ORDERS),
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BULK_TRADE_ORDERS,
                "items": {"$ref": "#/components/schemas/TradeOrderCreate"},
            }
        ),
    ]


class BulkTradeOrderResult(_Camel):
    """TradeOrderResultDTO."""

    request_index: int
    status: Literal["SUCCESS", "FAILURE"]
    message: str | None
    trade_order: TradeOrderResponse | None


class BulkTradeOrderResponse(_Camel):
    """BulkTradeOrderResponseDTO: SUCCESS (201) or FAILURE (400), never partial."""

    status: Literal["SUCCESS", "FAILURE"]
    message: str
    total_requested: int
    successful: int
    failed: int
    results: list[BulkTradeOrderResult]


class TradeOrderUpdate(TradeOrderCreate):
    """TradeOrderPutDTO: the order's fields and the version the change was made against.

    ``id``, ``quantitySent`` and ``submitted`` may be sent (the original's DTO has them)
    but are not the client's to set: they are ignored.
    """

    version: Annotated[int, Field(ge=0, le=2_147_483_647)]


class ExecutionCreate(_Camel):
    execution_timestamp: Timestamp | None = None
    execution_status_id: Id
    blotter_id: Id | None = None
    trade_type_id: Id | None = None
    trade_order_id: Id
    destination_id: Id
    quantity_ordered: Positive
    quantity_placed: NonNegative = Decimal(0)
    quantity_filled: NonNegative = Decimal(0)
    limit_price: Positive | None = None
    execution_service_id: Id | None = None

    @model_validator(mode="after")
    def _quantities_nest(self) -> ExecutionCreate:
        if self.quantity_placed > self.quantity_ordered:
            raise ValueError("quantityPlaced must not exceed quantityOrdered")
        if self.quantity_filled > self.quantity_placed:
            raise ValueError("quantityFilled must not exceed quantityPlaced")
        return self


class ExecutionUpdate(ExecutionCreate):
    """ExecutionPutDTO: the execution's fields and the version the change was made against."""

    version: Version


class TradeOrderSubmit(_Camel):
    quantity: Positive
    destination_id: Id


class TradeOrderSubmission(_Camel):
    trade_order_id: Id
    quantity: Positive
    destination_id: Id


class BatchSubmitRequest(_Camel):
    submissions: list[TradeOrderSubmission] = Field(min_length=1, max_length=MAX_BATCH_SUBMISSIONS)

    @field_validator("submissions")
    @classmethod
    def _unique_orders(cls, value: list[TradeOrderSubmission]) -> list[TradeOrderSubmission]:
        counts = Counter(s.trade_order_id for s in value)
        duplicates = sorted(order_id for order_id, n in counts.items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate tradeOrderId values are not allowed: {duplicates}")
        return value


class BatchSubmitResult(_Camel):
    trade_order_id: int
    status: Literal["SUCCESS", "FAILURE"]
    message: str | None
    execution: ExecutionResponse | None
    request_index: int


class BatchSubmitResponse(_Camel):
    status: Literal["SUCCESS", "PARTIAL", "FAILURE"]
    message: str
    total_requested: int
    successful: int
    failed: int
    results: list[BatchSubmitResult]


class FillRequest(_Camel):
    execution_status: Annotated[
        str, StringConstraints(min_length=1, max_length=20), AfterValidator(_storable)
    ]
    quantity_filled: Amount
    version: int
    #: Optional: the execution service's average fill price.
    average_price: NonNegative | None = None
