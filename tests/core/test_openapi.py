"""``/openapi.json`` of the execution and trade services describes what they answer."""

from __future__ import annotations

from typing import Any

import pytest

from tranche.core.settings import KafkaSettings
from tranche.execution.app import create_app as execution_app
from tranche.execution.settings import ExecutionSettings
from tranche.trade.app import create_app as trade_app
from tranche.trade.settings import TradeSettings

KAFKA = KafkaSettings(bootstrap_servers="127.0.0.1:1")  # never contacted: no lifespan here


def _spec(service: str, tmp_path: Any) -> dict[str, Any]:
    if service == "execution":
        return execution_app(ExecutionSettings(data_dir=tmp_path, kafka=KAFKA)).openapi()
    return trade_app(TradeSettings(data_dir=tmp_path, kafka=KAFKA)).openapi()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m.upper(), p, op) for p, ops in spec["paths"].items() for m, op in ops.items()]


@pytest.mark.parametrize("service", ["execution", "trade"])
def test_errors_are_documented_as_answered(service: str, tmp_path: Any) -> None:
    spec = _spec(service, tmp_path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for method, path, op in _operations(spec):
        responses = op["responses"]
        if "422" in responses:  # only the execution service's reused Idempotency-Key
            assert (service, method, path) in {
                ("execution", "POST", "/api/v1/executions"),
                ("execution", "POST", "/api/v1/executions/batch"),
            }
        if path.startswith("/api/") and "/health/" not in path:
            assert "503" in responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if op.get("requestBody"):
            assert "400" in responses, (method, path)
        for code, response in responses.items():
            if (
                int(code) >= 400
                and "ErrorResponse" not in str(response)
                and "DOWN" not in str(response.get("description"))
            ):
                pytest.fail(f"{method} {path} {code} has no error body schema: {response}")


def test_execution_decimals_are_numbers_and_the_key_header_is_documented(tmp_path: Any) -> None:
    spec = _spec("execution", tmp_path)
    out = spec["components"]["schemas"]["ExecutionOut"]["properties"]
    assert out["quantity"] == {"type": "number", "title": "Quantity"}
    assert {"type": "number"} in out["limitPrice"]["anyOf"]
    assert "string" not in str(out["quantityFilled"])
    post = spec["paths"]["/api/v1/executions"]["post"]
    assert [p["name"] for p in post["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    body = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert {"type": "number"} in body["quantity"]["anyOf"]


def test_trade_spec_lists_its_other_codes(tmp_path: Any) -> None:
    paths = _spec("trade", tmp_path)["paths"]
    assert "207" in paths["/api/v1/tradeOrders/batch/submit"]["post"]["responses"]
    assert {"409", "502"} <= set(paths["/api/v1/tradeOrders/{id}/submit"]["post"]["responses"])
    assert "409" in paths["/api/v1/executions/{id}/fill"]["put"]["responses"]


@pytest.mark.parametrize("service", ["execution", "trade"])
def test_headers_and_the_body_limit_are_documented(service: str, tmp_path: Any) -> None:
    for method, path, op in _operations(_spec(service, tmp_path)):
        responses = op["responses"]
        for code, response in responses.items():
            request_id = response.get("headers", {}).get("X-Request-Id")
            assert request_id and request_id["required"], (method, path, code)
        if op.get("requestBody"):  # BodySizeLimitMiddleware
            assert "ErrorResponse" in str(responses.get("413")), (method, path)
        if path.startswith("/api/") and "/health/" not in path:
            assert "Retry-After" in responses["503"]["headers"], (method, path)


def test_the_headers_each_service_sends_are_documented(tmp_path: Any) -> None:
    execution = _spec("execution", tmp_path)["paths"]
    create = execution["/api/v1/executions"]["post"]["responses"]
    assert create["201"]["headers"]["Location"]["required"] is True
    assert "Idempotent-Replayed" in create["201"]["headers"]
    assert "Retry-After" in create["409"]["headers"]
    batch = execution["/api/v1/executions/batch"]["post"]["responses"]
    assert all("Idempotent-Replayed" in batch[code]["headers"] for code in ("201", "207", "400"))
    trade = _spec("trade", tmp_path)["paths"]
    for path in ("/api/v1/tradeOrders", "/api/v1/executions"):
        total = trade[path]["get"]["responses"]["200"]["headers"]["X-Total-Count"]
        assert (total["required"], total["schema"]["type"]) == (False, "integer")
