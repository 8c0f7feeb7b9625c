"""The batch path's shortcuts give exactly what the general code gives (no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tranche.execution.bulk_create import ItemResult, new_dto
from tranche.execution.bulk_insert import NewRow
from tranche.execution.events import order_events, order_headers
from tranche.execution.schemas import dumps, execution_dto, parse_json
from tranche.execution.settings import DEFAULT_STATUSES, DEFAULT_TRADE_TYPES
from tranche.execution.validation import (
    Invalid,
    NewExecution,
    Rules,
    _validate_plain,
    validate_item,
)

RULES = Rules(DEFAULT_TRADE_TYPES, DEFAULT_STATUSES)

_texts = st.one_of(
    st.none(),
    st.sampled_from(["NEW", "BUY", "ML", " ", "", "SELL  ", "x" * 30]),
    st.text(max_size=30),
    st.integers(-5, 5),
    st.booleans(),
)
_numbers = st.one_of(
    st.none(),
    st.integers(-(10**12), 10**12),
    st.decimals(allow_nan=False, allow_infinity=False, places=10, min_value=-(10**11)),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from(["12", "abc", True, 1.5]),
)
_ints = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([True, 1.0, "7", Decimal("3"), Decimal("3.5")]),
)
_items = st.fixed_dictionaries(
    {},
    optional={
        "executionStatus": _texts,
        "tradeType": _texts,
        "destination": _texts,
        "securityId": _texts,
        "quantity": _numbers,
        "limitPrice": _numbers,
        "tradeServiceExecutionId": _ints,
        "version": _ints,
        "extra": _texts,
    },
)


@settings(max_examples=300, deadline=None)
@given(_items)
def test_plain_path_agrees_with_the_pydantic_model(raw: dict[str, Any]) -> None:
    class NotADict(dict[str, Any]):
        """A dict subclass: always read through the pydantic model."""

    plain = _validate_plain(raw, RULES)
    if plain is not None:
        model = validate_item(NotADict(raw), RULES)
        assert plain == model
        assert type(plain) is type(model)
        if not isinstance(model, Invalid):
            assert [type(v) for v in plain] == [type(v) for v in model]


@settings(max_examples=100, deadline=None)
@given(_items)
def test_validation_is_the_same_whichever_path_reads_the_fields(raw: dict[str, Any]) -> None:
    class NotADict(dict[str, Any]):
        """A dict subclass: always read through the pydantic model."""

    assert validate_item(raw, RULES) == validate_item(NotADict(raw), RULES)


def test_items_parsed_from_json_take_the_plain_path() -> None:
    raw = parse_json(
        b'{"executionStatus": "NEW", "tradeType": "BUY", "destination": "ML", '
        b'"securityId": "68336002fe95851f0a2aeda9", "quantity": 100, "limitPrice": 25.5, '
        b'"tradeServiceExecutionId": 7, "version": 1}'
    )
    assert isinstance(_validate_plain(raw, RULES), NewExecution)


@settings(max_examples=50, deadline=None)
@given(
    quantity=st.decimals(min_value=Decimal("0.00000001"), max_value=10**9, places=8),
    limit=st.one_of(st.none(), st.decimals(min_value=1, max_value=10**6, places=8)),
    tsid=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    ticker=st.one_of(st.none(), st.just("IBM")),
)
def test_new_dto_renders_as_the_dto_of_the_stored_row(
    quantity: Decimal, limit: Decimal | None, tsid: int | None, ticker: str | None
) -> None:
    row = NewRow(
        execution_status="NEW",
        trade_type="BUY",
        destination="ML",
        security_id="68336002fe95851f0a2aeda9",
        quantity=quantity,
        limit_price=limit,
        received_timestamp=datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        trade_service_execution_id=tsid,
    )
    assert dumps(new_dto(row, 42, ticker)) == dumps(
        execution_dto(row.values() | {"id": 42}, ticker)
    )


_wire_texts = st.text(alphabet=st.sampled_from('ab"\\{}[],:\u00e9\u0000 id'), max_size=12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_wire_texts, _wire_texts, st.one_of(st.none(), _wire_texts)), max_size=6))
def test_events_render_each_dto_as_dumps_renders_it(texts: list[tuple[str, str, Any]]) -> None:
    received = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    dtos = [
        new_dto(
            NewRow(
                status, "BUY", destination, '"},{"id":' + status, Decimal("1"), None, received, 7
            ),
            i + 1,
            ticker,
        )
        for i, (status, destination, ticker) in enumerate(texts)
    ]
    events, values = order_events("orders", order_headers("x.Y"), dtos)
    assert values == [dumps(dto) for dto in dtos]
    assert [e.value for e in events] == values
    assert [e.key for e in events] == [str(dto["id"]) for dto in dtos]


def test_the_answer_reuses_the_events_json_until_the_publish_wait_stamps_the_dto() -> None:
    received = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    dto = new_dto(NewRow("NEW", "BUY", "ML", "s", Decimal("1"), None, received, None), 1, None)
    _, [value] = order_events("orders", order_headers("x.Y"), [dto])
    result = ItemResult(0, dto, rendered=value)
    assert dumps(result.execution_json()) == dumps(dto)
    dto["sentTimestamp"] = received
    assert dumps(result.execution_json()) == dumps(dto)
    assert b'"sentTimestamp":"2025-01-02T03:04:05.123456Z"' in dumps(result.execution_json())
