"""Bodies shared by every resource: errors, pages of items, health."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    error: str
    detail: str
    errors: list[FieldError] | None = Field(None, description="with `invalid_request`: one per field")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: these status codes answer with an ErrorOut."""
    return {code: {"model": ErrorOut} for code in codes}


# Routes under /v1/sweeps (sweeps, their configurations, runs, analysis and dashboard data).
SWEEP_ERRORS = error_responses(401, 404, 409, 413, 422, 429)
# Datasets and workloads (uploads: 400 for a malformed body, 503 when Keras cannot be loaded).
UPLOAD_ERRORS = error_responses(400, 401, 404, 413, 422, 503)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class HealthOut(BaseModel):
    status: str
    database: str | None = None
    migrations: str | None = None
    detail: str | None = None
