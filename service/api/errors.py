"""One place that turns errors into JSON: known domain errors keep their status
and message; request validation becomes a 422 naming each field; anything
else is logged with its traceback and answered as a plain 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas.common import ErrorOut
from service.core.errors import DomainError

log = logging.getLogger(__name__)

# What any operation can answer besides its own responses, all in the shape
# the handlers below write (OpenAPI would otherwise document FastAPI's default
# 422 body, which this app never sends): unparseable body, missing/bad token,
# body over the size limit, validation, database down.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "The body could not be parsed"),
        (401, "An API token is needed or the one sent is unknown or revoked"),
        (413, "The body or the sweep is over a limit of this server"),
        (422, "A field is invalid; `detail` names it and says how to fix it"),
        (503, "The database is unavailable; retry"),
    )
}


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.code, "detail": exc.detail, **exc.extra}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "extra_forbidden":
                msg = "unknown field; remove it or check its spelling"
            errors.append({"field": _loc(e.get("loc", ())), "message": msg})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"error": "invalid_request", "detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": "http_error", "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"error": "internal", "detail": "internal server error; the server log has the details"},
            status_code=500,
        )
