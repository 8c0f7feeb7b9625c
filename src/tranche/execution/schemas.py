"""The wire format: request models, the response DTOs (for OpenAPI), and their rendering.

Field names and shapes are the original's (reference A3). Bodies are read and
answers rendered with :mod:`tranche.core.exactjson` (re-exported here: ``parse_json``,
``dumps``, ``MalformedJson``, the same code as the trade service's): decimals are
exact JSON numbers (``100.50000000``, the scale of ``decimal(18,8)``), never through
a float, so a quantity survives the round trip digit for digit. Timestamps are
ISO-8601 UTC with ``Z``, in REST and on Kafka alike (the original sent epoch numbers
on Kafka).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tranche.core.exactjson import MalformedJson, dumps, parse_json
from tranche.core.json_number import JsonNumber

__all__ = [
    "BatchRequestDoc",
    "BatchResponseOut",
    "ExecutionOut",
    "ExecutionPageOut",
    "ExecutionPostIn",
    "ExecutionPutIn",
    "ExecutionResultOut",
    "MalformedJson",
    "PaginationOut",
    "SecurityOut",
    "dumps",
    "execution_dto",
    "parse_json",
]


def execution_dto(row: Mapping[Any, Any], ticker: str | None) -> dict[str, Any]:
    """ExecutionDTO of a row of ``execution`` (reference A3, ``version`` as stored)."""
    filled = row["quantity_filled"]
    received: datetime = row["received_timestamp"]
    return {
        "id": row["id"],
        "executionStatus": row["execution_status"],
        "tradeType": row["trade_type"],
        "destination": row["destination"],
        "securityId": row["security_id"],
        "ticker": ticker,
        "security": {"securityId": row["security_id"], "ticker": ticker},
        "quantity": row["quantity"],
        "limitPrice": row["limit_price"],
        "receivedTimestamp": received,
        "sentTimestamp": row["sent_timestamp"],
        "tradeServiceExecutionId": row["trade_service_execution_id"],
        "quantityFilled": filled if filled is not None else Decimal("0E-8"),
        "averagePrice": row["average_price"],
        "version": row["version"],
    }


# --- requests -------------------------------------------------------------------------


class ExecutionPostIn(BaseModel):
    """ExecutionPostDTO: one execution to create (a batch item has the same shape)."""

    model_config = ConfigDict(extra="ignore")

    executionStatus: str | None = Field(None, examples=["NEW"])
    tradeType: str | None = Field(None, examples=["BUY"])
    destination: str | None = Field(None, examples=["ML"])
    securityId: str | None = Field(None, examples=["68336002fe95851f0a2aeda9"])
    quantity: JsonNumber | None = Field(None, examples=[100])
    limitPrice: JsonNumber | None = Field(None, examples=[25.5])
    tradeServiceExecutionId: int | None = Field(None, examples=[42])
    version: int | None = Field(
        None, description="Accepted for compatibility; a new execution starts at version 1."
    )


class ExecutionPutIn(BaseModel):
    """ExecutionPutDTO: a fill. ``quantityFilled`` is cumulative, not a delta."""

    model_config = ConfigDict(extra="ignore")

    quantityFilled: JsonNumber = Field(examples=[40])
    averagePrice: JsonNumber | None = Field(None, examples=[25.37])
    version: int = Field(description="The version the caller last read (optimistic lock).")


class BatchRequestDoc(BaseModel):
    """BatchExecutionRequestDTO (documentation of the body; items are validated one by one)."""

    executions: list[ExecutionPostIn | None]


# --- responses (OpenAPI documentation of what execution_dto and the routes render) ----


class SecurityOut(BaseModel):
    securityId: str
    ticker: str | None


class ExecutionOut(BaseModel):
    id: int
    executionStatus: str
    tradeType: str
    destination: str
    securityId: str
    ticker: str | None
    security: SecurityOut
    quantity: JsonNumber
    limitPrice: JsonNumber | None
    receivedTimestamp: datetime
    sentTimestamp: datetime | None
    tradeServiceExecutionId: int | None
    quantityFilled: JsonNumber
    averagePrice: JsonNumber | None
    version: int


class ExecutionResultOut(BaseModel):
    requestIndex: int
    status: str = Field(examples=["SUCCESS", "FAILED"])
    message: str | None
    execution: ExecutionOut | None


class BatchResponseOut(BaseModel):
    status: str = Field(examples=["SUCCESS", "PARTIAL_SUCCESS", "FAILED"])
    message: str
    totalRequested: int
    successful: int
    failed: int
    results: list[ExecutionResultOut]


class PaginationOut(BaseModel):
    offset: int
    limit: int
    totalElements: int
    totalPages: int
    currentPage: int
    hasNext: bool
    hasPrevious: bool


class ExecutionPageOut(BaseModel):
    content: list[ExecutionOut]
    pagination: PaginationOut
