"""One place that turns errors into JSON, in one shape everywhere:
``{"error": <code>, "detail": <what was wrong and how to fix it>}`` (validation adds ``errors``,
one per field). Each kind of error has a stable code (``ERROR_CODES``, also in the OpenAPI
document); known domain errors keep their status and message; a body that is not JSON says
where and what was expected; a path id that cannot exist is a 404; anything else is logged
with its traceback and answered as a plain 500."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.api.schemas.common import ErrorOut
from service.core import errors as domain
from service.core.spec import error_path

log = logging.getLogger(__name__)

# Every code the API answers with, what it means, and its status. Clients branch on the code;
# the detail text may change.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the request cannot be parsed (e.g. a malformed multipart form)"),
    domain.Unauthorized.code: (401, "an API token is needed, or the one sent is unknown or revoked"),
    domain.NotFound.code: (404, "no such resource (an id that does not exist or cannot exist)"),
    "method_not_allowed": (405, "the path exists but not with this method; `Allow` lists the methods"),
    domain.Conflict.code: (409, "the resource is not in a state that allows this"),
    domain.LimitExceeded.code: (413, "the body, the upload or the sweep is over a limit of this server"),
    "invalid_json": (422, "the body is not JSON; `detail` gives the line, column and what was expected"),
    "invalid_request": (422, "a field of the body or a query parameter is invalid; `errors` names each"),
    domain.InvalidSpec.code: (422, "the sweep spec or a query is valid JSON but not a usable sweep or query"),
    domain.InvalidUpload.code: (422, "an uploaded dataset or model cannot be used as it is"),
    domain.InvalidValue.code: (422, "a value the database cannot hold (NUL in text, over 64 bits)"),
    domain.TooManyInFlight.code: (429, "too many sweeps queued or running; wait for some to finish"),
    "internal": (500, "a bug; the server log has the traceback"),
    domain.DatabaseUnavailable.code: (503, "the database is unavailable; retry"),
}
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}

# What any operation can answer besides its own responses, all in the shape the handlers
# below write (OpenAPI would otherwise document FastAPI's default 422 body, never sent).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in (
        (400, "The body could not be parsed (`bad_request`)"),
        (401, "An API token is needed or the one sent is unknown or revoked (`unauthorized`)"),
        (413, "The body or the sweep is over a limit of this server (`limit_exceeded`)"),
        (422, "A field is invalid, or the body is not JSON; `detail` names the field or the place"),
        (503, "The database is unavailable; retry (`database_unavailable`)"),
    )
}


def error_codes_markdown() -> str:
    """The table of error codes, for the README and the OpenAPI description."""
    rows = [f"| `{code}` | {status} | {text} |" for code, (status, text) in ERROR_CODES.items()]
    return "\n".join(["| code | status | meaning |", "|---|---|---|", *rows])


def _loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [p for p in error_path(list(loc)) if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _position(body: bytes, pos: int) -> tuple[int, int]:
    before = body[:pos]
    return before.count(b"\n") + 1, pos - (before.rfind(b"\n") + 1) + 1


def _expected(msg: str) -> str:
    """json's "Expecting value" as a plain sentence: "expected a value"."""
    return "expected " + msg.removeprefix("Expecting ").removesuffix(" enclosed in double quotes").lower()


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document lists for the path (Starlette names only those of the
    first route that matched), HEAD with GET as Starlette answers it. A path the document lists
    literally (``/v1/workloads/keras``) is that path alone, not a template's id (``{workload_id}``
    takes integers only)."""
    path = request.url.path
    methods: set[str] = set()
    paths = request.app.openapi()["paths"]
    literal = {path: paths[path]} if path in paths else None
    for template, operations in (literal or paths).items():
        if re.fullmatch(re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)), path):
            methods |= {m.upper() for m in operations if m.upper() in _METHODS}
    return sorted(methods | ({"HEAD"} if "GET" in methods else set()))


def _error(code: str, detail: str, status: int, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(domain.DomainError)
    async def _domain(_: Request, exc: domain.DomainError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.code, "detail": exc.detail, **exc.extra}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        found = exc.errors()
        bad_json = next((e for e in found if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            pos = int(bad_json["loc"][-1]) if str(bad_json["loc"][-1]).isdigit() else 0
            line, column = _position(await request.body(), pos)
            what = _expected(str((bad_json.get("ctx") or {}).get("error", "a JSON value")))
            detail = f"the body is not valid JSON: line {line}, column {column}: {what}"
            return _error("invalid_json", detail, 422)
        if found and all(e.get("loc", ("",))[0] == "path" for e in found):
            # An id outside 1..2**63-1 (or not a number) names nothing that could exist.
            return _error("not_found", f"nothing at {request.url.path}: the ids are integers from 1", 404)
        errors = []
        for e in found:
            msg = str(e.get("msg", "invalid"))
            if e.get("type") == "extra_forbidden":
                msg = "unknown field; remove it or check its spelling"
            errors.append({"field": _loc(e.get("loc", ())), "message": msg})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _error("invalid_request", detail, 422, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail)}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error("internal", "internal server error; the server log has the details", 500)
