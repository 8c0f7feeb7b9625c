"""Errors: the domain refusals every service raises, and the one JSON error body.

Services state a refusal in their own terms — :class:`NotFound`,
:class:`InvalidInput` naming the field, :class:`Refused`, :class:`Conflict` /
:class:`VersionConflict`, :class:`DependencyUnavailable` /
:class:`DependencyFailed` — and never pick an HTTP status. The edge
(:mod:`tranche.core.http`) maps each kind to its status and body, once, for all
three apps. This module imports no web framework, so a service module can use
it and stay free of one (an import-linter contract holds them to it).

The body keeps the Spring originals' shape: ``{"timestamp", "status", "error",
"message", "path", "validationErrors"}`` — ``validationErrors`` maps each bad
field (dotted path) to what is wrong with it. Unlike the originals, ``path`` is
the plain request path (they sent ``uri=/api/...``, a Spring ``WebRequest``
quirk) and malformed JSON or bad parameter types are 400, not 500.
:class:`ApiError` remains for code that already speaks HTTP (routes, request
dependencies) and needs a status of its own (401, 403, 422, 429).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

__all__ = [
    "ApiError",
    "Conflict",
    "DependencyFailed",
    "DependencyUnavailable",
    "DomainError",
    "InvalidInput",
    "NotFound",
    "Refused",
    "VersionConflict",
    "error_body",
    "field_path",
]

from tranche.core.clock import utc_now


class DomainError(Exception):
    """A request the service will not carry out, said in the domain's words.

    ``field`` names the input at fault and ``problem`` what is wrong with it (the
    caller sees them as ``validationErrors``); ``details`` are facts the caller
    needs to recover (the current version, the running execution), sent as extra
    members of the error body under the names given here.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problem: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.problem = problem if problem is not None else message
        self.details = dict(details) if details else {}

    @property
    def fields(self) -> dict[str, str] | None:
        """``{field: problem}``, or None when no single field is at fault."""
        return {self.field: self.problem} if self.field else None


class NotFound(DomainError):
    """The thing the request names does not exist."""


class InvalidInput(DomainError):
    """One input is wrong; ``message`` defaults to ``Validation failed: <field> <problem>``."""

    def __init__(
        self,
        field: str,
        problem: str,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        text = message if message is not None else f"Validation failed: {field} {problem}"
        super().__init__(text, field=field, problem=problem, details=details)


class Refused(DomainError):
    """A well-formed request the service declines (its state or a peer's verdict)."""


class Conflict(DomainError):
    """The request collides with the current state (a duplicate, a job already running)."""


class VersionConflict(Conflict):
    """The request was made against a version that is no longer current."""

    def __init__(self, message: str, *, current_version: int) -> None:
        super().__init__(message, details={"currentVersion": current_version})
        self.current_version = current_version


class DependencyUnavailable(DomainError):
    """Something the service needs cannot be reached now; retrying later may work."""

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DependencyFailed(DomainError):
    """A peer the service relies on failed the request (answered badly or kept failing)."""


class ApiError(Exception):
    """Raise from HTTP-facing code to answer ``status`` with the uniform body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        validation_errors: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.validation_errors = dict(validation_errors) if validation_errors else None
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else None


def error_body(
    status: int,
    message: str,
    path: str,
    validation_errors: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    body: dict[str, Any] = {
        "timestamp": utc_now().isoformat(),
        "status": status,
        "error": reason,
        "message": message,
        "path": path,
        "validationErrors": dict(validation_errors) if validation_errors else None,
    }
    if extra:
        body.update(extra)
    return body


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """``("body", "executions", 3, "quantity")`` → ``executions[3].quantity``."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"
