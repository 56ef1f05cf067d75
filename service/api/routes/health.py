"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from service.api.deps import DbDep
from service.api.schemas.common import HealthOut
from service.core import migrate

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process is up (does not touch the database)."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def readyz(db: DbDep) -> HealthOut | JSONResponse:
    """Ready to serve: the database answers and its schema is at the current migration."""
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(db.engine)
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        body = HealthOut(status="unavailable", database="unreachable", detail=type(exc).__name__)
        return JSONResponse(body.model_dump(), status_code=503)
    head = migrate.head_revision(db.url)
    if current != head:
        body = HealthOut(
            status="unavailable",
            database="ok",
            migrations=f"{current} (head is {head})",
            detail="run `sweeps migrate`",
        )
        return JSONResponse(body.model_dump(), status_code=503)
    return HealthOut(status="ok", database="ok", migrations=str(current))
