"""The one error base. Services raise these; one handler turns them into `{"error": {...}}` JSON."""

from __future__ import annotations

from typing import Any, ClassVar


class PosError(Exception):
    """A failure the client can act on, with an HTTP status and a stable machine-readable code."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request could not be processed."
    # Most errors undo the request's work. Some refusals must leave a record (a failed sign-in, a refused age
    # check, a PIN lock-out): those set this, and the transaction boundary commits what the service wrote
    # before raising. Such a service writes only the record before it raises.
    keeps_records: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.headers = headers
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(PosError):
    status_code = 422
    code = "validation_error"
    default_message = "Some fields are not valid."


class NotFound(PosError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Conflict(PosError):
    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."


class NotAuthenticated(PosError):
    status_code = 401
    code = "not_authenticated"
    default_message = "Sign in first."


class PermissionDenied(PosError):
    status_code = 403
    code = "permission_denied"
    default_message = "Your role does not allow this."


class TooManyRequests(PosError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many requests; wait a moment and try again."

    def __init__(self, retry_after_seconds: float, message: str | None = None, **kwargs: Any) -> None:
        seconds = max(1, int(retry_after_seconds + 0.999))
        super().__init__(message, headers={"Retry-After": str(seconds)}, **kwargs)
        self.details.setdefault("retry_after_seconds", seconds)


class ServiceUnavailable(PosError):
    status_code = 503
    code = "service_unavailable"
    default_message = "A service this needs is unavailable; try again shortly."
