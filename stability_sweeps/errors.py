"""The client's errors: one base class, the API's own answer, and a server that cannot be reached."""

from __future__ import annotations

from typing import Any


class SweepsError(Exception):
    """Base class of everything this package raises on purpose."""


class ServerUnreachable(SweepsError):
    """No answer from the API: the message names the URL tried and how to start a server."""


class ApiError(SweepsError):
    """A 4xx/5xx from the API, with its stable ``code`` and its ``message`` (the body's ``detail``).

    ``errors`` lists ``{"field", "message"}`` per invalid field on ``invalid_request``; branch on
    ``code`` (the README's table of error codes), not on the text.
    """

    def __init__(
        self, status: int, code: str, message: str, *, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


class EmbeddedServiceError(SweepsError):
    """The background service started for this Python process did not come up."""
