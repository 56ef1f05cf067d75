"""Domain errors. The API maps each to an HTTP status in one handler.

Every error says what was wrong and how to fix it; ``detail`` is that text.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class InvalidSpec(DomainError):
    status_code = 422
    code = "invalid_spec"


class InvalidUpload(InvalidSpec):
    """An uploaded file (dataset .npz, Keras model JSON) that cannot be used as it is."""

    code = "invalid_upload"


class InvalidValue(DomainError):
    """A value the database cannot hold or compare (NUL in text, an integer out of range)."""

    status_code = 422
    code = "invalid_value"


class LimitExceeded(DomainError):
    status_code = 413
    code = "limit_exceeded"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class TooManyInFlight(DomainError):
    status_code = 429
    code = "too_many_in_flight"


class DatabaseUnavailable(DomainError):
    status_code = 503
    code = "database_unavailable"
