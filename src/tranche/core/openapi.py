"""The OpenAPI document as the services actually answer, for client generators.

FastAPI documents a 422 ``HTTPValidationError`` on every operation with parameters,
but the services answer bad input with 400 and the uniform error body
(:func:`tranche.core.errors.error_body`), and a database that cannot be reached with
503. :func:`conforming_openapi` rewrites the generated document once: FastAPI's 422 is
removed (a 422 a route declares itself stays), every operation that takes input lists
400, every operation under ``/api`` but the probes lists 503 and, when it addresses a resource by a
path parameter, 404, and each error response without a body
schema gets ``ErrorResponse``. Decimals sent as numbers are typed
:data:`tranche.core.json_number.JsonNumber` in the wire models.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ERROR_RESPONSE", "conforming_openapi", "install_openapi"]

JSON = "application/json"
ERROR_RESPONSE: dict[str, Any] = {
    "type": "object",
    "description": "The uniform error body (reference A3 ErrorResponse); a service may add "
    "members (the trade service's `error`).",
    "required": ["timestamp", "status", "error", "message", "path", "validationErrors"],
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "status": {"type": "integer"},
        "error": {"type": "string"},
        "message": {"type": "string"},
        "path": {"type": "string"},
        "validationErrors": {
            "anyOf": [
                {"type": "object", "additionalProperties": {"type": "string"}},
                {"type": "null"},
            ],
            "description": "Field (``executions[3].quantity``) → what is wrong with it.",
        },
    },
}
_ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
_DESCRIPTIONS = {
    400: "Bad input: the body or a parameter (named in validationErrors)",
    404: "No such resource",
    503: "The database is unavailable (Retry-After says when to retry)",
}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get(JSON, {}).get("schema", {})
    return bool(schema.get("$ref") == _FASTAPI_VALIDATION)


def _can_refuse(parameter: dict[str, Any]) -> bool:
    """Whether a value of ``parameter`` can be invalid: anything but a free string."""
    schema = {k: v for k, v in parameter.get("schema", {}).items() if k != "title"}
    return schema != {"type": "string"}


def _takes_input(operation: dict[str, Any]) -> bool:
    parameters = operation.get("parameters", [])
    return bool(operation.get("requestBody") or any(_can_refuse(p) for p in parameters))


def conforming_openapi(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (FastAPI's document) rewritten as described in the module docstring."""
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "422" in responses and _is_fastapi_422(responses["422"]):
                del responses["422"]
            if _takes_input(operation):
                responses.setdefault("400", {"description": _DESCRIPTIONS[400]})
            if path.startswith("/api/") and "/health/" not in path:
                responses.setdefault("503", {"description": _DESCRIPTIONS[503]})
                if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                    responses.setdefault("404", {"description": _DESCRIPTIONS[404]})
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400 and not response.get("content"):
                    response["content"] = {JSON: {"schema": dict(_ERROR_REF)}}
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorResponse"] = ERROR_RESPONSE
    return spec


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`conforming_openapi` of ``app`` at ``/openapi.json`` (built once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = conforming_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
