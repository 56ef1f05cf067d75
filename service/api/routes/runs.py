"""Runs (one seed of one configuration) and their curves, filterable and paginated."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import DbDep, ReaderDep
from service.api.query_params import Offset, ParamQuery, RunClass, parse_param_filters
from service.api.schemas.common import SWEEP_ERRORS, Page
from service.api.schemas.sweeps import CurveOut
from service.core.records import RunRecord
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.states import RunStatus

router = APIRouter(prefix="/v1", tags=["runs"])


@router.get("/sweeps/{sweep_id}/runs", response_model=Page[RunRecord], responses=SWEEP_ERRORS)
def list_runs(
    sweep_id: int,
    db: DbDep,
    _: ReaderDep,
    status: RunStatus | None = None,
    run_class: RunClass | None = None,
    seed: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    config_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    param: ParamQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[RunRecord]:
    filters = parse_param_filters(param)
    with db.transaction() as s:
        sweeps_repo.get_sweep(s, sweep_id=sweep_id)
        items, total = runs_repo.list_runs(
            s,
            sweep_id=sweep_id,
            status=status,
            run_class=run_class,
            seed=seed,
            config_id=config_id,
            filters=filters,
            limit=limit,
            offset=offset,
        )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/runs/{run_id}", response_model=RunRecord, responses=SWEEP_ERRORS)
def get_run(run_id: int, db: DbDep, _: ReaderDep) -> RunRecord:
    with db.transaction() as s:
        return runs_repo.get_run(s, run_id=run_id)


@router.get("/runs/{run_id}/curve", response_model=CurveOut, responses=SWEEP_ERRORS)
def get_curve(run_id: int, db: DbDep, _: ReaderDep) -> CurveOut:
    """Per-epoch metrics (epoch 0 is the evaluation at initialisation), plus mini-batch losses if recorded."""
    with db.transaction() as s:
        run = runs_repo.get_run(s, run_id=run_id)
        points = runs_repo.curve(s, run_id=run_id)
    return CurveOut(run_id=run_id, points=points, step_losses=run.step_losses)
