"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), served with their
scripts from files installed with the package (static/docs/, vendored with their licences),
so the pages work on a machine without internet and load nothing from outside the host."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)
_ASSETS = Path(__file__).resolve().parent.parent / "static" / "docs"
_TYPES = {".js": "text/javascript", ".css": "text/css"}
_PREFIX = "/static/docs"
_FAVICON = "/static/favicon.svg"


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - API",
        swagger_js_url=f"{_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{_PREFIX}/swagger-ui.css",
        swagger_favicon_url=_FAVICON,
        # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} - API reference",
        redoc_js_url=f"{_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=_FAVICON,
        with_google_fonts=False,
    )


@router.get(_PREFIX + "/{name}")
def asset(name: str) -> Response:
    path = (_ASSETS / name).resolve()
    if path.parent != _ASSETS or path.suffix not in _TYPES or not path.is_file():
        return Response(status_code=404)
    # The files change only with the package version.
    cache = {"Cache-Control": "public, max-age=86400"}
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=cache)
