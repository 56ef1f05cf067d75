"""The FastAPI application factory (dependencies injected, nothing global)."""

from __future__ import annotations

import logging

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import errors, openapi
from service.api.deps import path_ids_in_range
from service.api.headlines import HeadlineCache
from service.api.routes import (
    analysis,
    configs,
    dashboard,
    datasets,
    docs,
    health,
    metrics,
    pages,
    runs,
    static,
    sweeps,
    workers,
    workloads,
)
from service.core.config import Settings, get_settings
from service.core.connections import ConnectionBudget
from service.core.db import Database

log = logging.getLogger(__name__)


class BodySizeLimit:
    """Refuse request bodies over a limit before reading them (413), uploads excepted."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_max_bytes if scope["path"] in openapi.UPLOAD_PATHS else self.max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        seen = 0
        too_large = False

        async def limited() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    too_large = True
                    raise _BodyTooLarge()
            return message

        async def unless_too_large(message: Message) -> None:
            # Body parsers catch our exception and answer 400 "error parsing the
            # body" (chunked uploads have no Content-Length to refuse up front);
            # the 413 below replaces whatever the app says once the limit is hit.
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited, unless_too_large)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    import json

    body = json.dumps(
        {"error": "limit_exceeded", "detail": f"the request body is over the limit of {limit} bytes"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = db or Database(settings.database_url, ConnectionBudget.from_settings(settings))
    app = FastAPI(
        title="Stability Sweeps",
        version="0.1.0",
        description=(
            "Sweeps over learning rate, batch size, Adam betas and seeds that show where training is "
            "stable, diverges, rises again, stalls at chance or is just noisy."
        ),
        responses=errors.COMMON_RESPONSES,
        # Served by routes/docs.py from files installed with the package, not from a CDN.
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(path_ids_in_range)],
    )
    app.state.settings = settings
    app.state.db = db
    app.state.headlines = HeadlineCache()
    errors.install(app)
    for module in (
        health,
        sweeps,
        configs,
        runs,
        analysis,
        dashboard,
        workloads,
        datasets,
        workers,
        metrics,
        static,
        docs,
        pages,
    ):
        app.include_router(module.router)
    app.openapi = openapi.installer(app, settings)  # type: ignore[method-assign]
    metrics.install(app)  # request counting/latency middleware
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, upload_max_bytes=settings.max_upload_bytes
    )
    return app
