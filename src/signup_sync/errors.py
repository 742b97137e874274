"""Typed domain errors: each carries its HTTP status; one handler in the API renders them."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error a client can act on. ``field`` names the input at fault, when there is one."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """Response headers the error needs (e.g. Retry-After)."""
        return {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "detail": self.message}
        if self.field:
            body["errors"] = [{"field": self.field, "message": self.message}]
        body.update(self.extra)
        return body


class InvalidInput(DomainError):
    status_code = 422
    code = "validation_error"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"
    scheme = "Bearer"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.scheme}


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"


class RateLimited(DomainError):
    """Too many requests for one token: answered 429 with Retry-After (whole seconds)."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Forbidden(DomainError):
    """A valid credential without the permission this endpoint needs (body names the role)."""

    status_code = 403
    code = "forbidden"
