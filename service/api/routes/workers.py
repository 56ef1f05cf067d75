from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import DbDep, ReaderDep, SettingsDep
from service.core.records import WorkerRecord
from service.core.repo import workers as workers_repo

router = APIRouter(prefix="/v1/workers", tags=["operations"])


@router.get("", response_model=list[WorkerRecord])
def list_workers(
    db: DbDep,
    settings: SettingsDep,
    _: ReaderDep,
    include_stopped: Annotated[bool, Query()] = False,
) -> list[WorkerRecord]:
    """Live workers (heartbeat within the grace period) with their device and current trial."""
    with db.transaction() as s:
        rows = workers_repo.list_workers(
            s, grace_s=settings.heartbeat_grace_s, include_stopped=include_stopped
        )
    return rows
