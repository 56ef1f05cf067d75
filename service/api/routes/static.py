"""Static files of the dashboard: its scripts and styles, and Plotly.js from the installed
``plotly`` package, so a page loads nothing from outside the host."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

router = APIRouter()
_STATIC = Path(__file__).resolve().parent.parent / "static"
_PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    return FileResponse(
        _PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    path = (_STATIC / name).resolve()
    if path.parent != _STATIC.resolve() or path.suffix not in _STATIC_TYPES or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
