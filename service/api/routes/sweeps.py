"""Sweeps: create, list, get with progress, cancel, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response, status

from service.api.deps import DbDep, ReaderDep, SettingsDep, WriterDep
from service.api.schemas.common import SWEEP_ERRORS, Page
from service.api.schemas.sweeps import SweepOut
from service.core import sweeps as sweeps_service
from service.core.repo import sweeps as sweeps_repo
from service.core.spec import SweepSpec
from service.core.states import SweepState

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"])


# 200: a retry with the same Idempotency-Key returns the sweep it first created.
_REPLAYED: dict[int | str, dict[str, Any]] = {
    200: {"model": SweepOut, "description": "The sweep first created with this Idempotency-Key"}
}


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=SweepOut, responses={**SWEEP_ERRORS, **_REPLAYED}
)
def create_sweep(
    spec: SweepSpec,
    db: DbDep,
    settings: SettingsDep,
    token_id: WriterDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> SweepOut:
    """Queue a sweep. A retried request with the same `Idempotency-Key` returns the first sweep."""
    record, created = sweeps_service.create_sweep(
        db, settings, spec, idempotency_key=idempotency_key, token_id=token_id
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/sweeps/{record.id}"
    return SweepOut.of(record)


@router.get("", response_model=Page[SweepOut], responses=SWEEP_ERRORS)
def list_sweeps(
    db: DbDep,
    _: ReaderDep,
    state: SweepState | None = None,
    q: Annotated[str | None, Query(max_length=200, description="name contains")] = None,
    workload: Annotated[str | None, Query(max_length=200)] = None,
    sort: Literal["created", "-created", "name", "-name", "state", "-state"] = "-created",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Page[SweepOut]:
    with db.transaction() as s:
        items, total = sweeps_repo.list_sweeps(
            s, state=state, name_contains=q, workload=workload, sort=sort, limit=limit, offset=offset
        )
    return Page(items=[SweepOut.of(r) for r in items], total=total, limit=limit, offset=offset)


@router.get("/{sweep_id}", response_model=SweepOut, responses=SWEEP_ERRORS)
def get_sweep(sweep_id: int, db: DbDep, _: ReaderDep) -> SweepOut:
    with db.transaction() as s:
        return SweepOut.of(sweeps_repo.get_sweep(s, sweep_id=sweep_id))


@router.post("/{sweep_id}/cancel", response_model=SweepOut, responses=SWEEP_ERRORS)
def cancel_sweep(sweep_id: int, db: DbDep, _: WriterDep) -> SweepOut:
    """Waiting configurations are cancelled at once; running ones stop at their next epoch."""
    with db.transaction() as s:
        return SweepOut.of(sweeps_repo.cancel_sweep(s, sweep_id=sweep_id))


@router.delete("/{sweep_id}", status_code=status.HTTP_204_NO_CONTENT, responses=SWEEP_ERRORS)
def delete_sweep(sweep_id: int, db: DbDep, _: WriterDep) -> Response:
    """Delete the sweep, its runs and curves, and its Optuna study."""
    sweeps_service.delete_sweep(db, sweep_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
