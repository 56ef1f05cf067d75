"""Trials (configurations), runs and curves of a sweep, filterable and paginated."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from service.api.deps import DbDep, ReaderDep
from service.api.routes.sweeps import ERRORS
from service.api.schemas import CurveOut, Page
from service.core.errors import InvalidSpec
from service.core.records import ConfigRecord, RunRecord
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.repo.runs import ParamFilter

router = APIRouter(prefix="/v1", tags=["trials and runs"])

_PARAM_HELP = (
    "Filter on a parameter, repeatable: `name=value` (e.g. `batch_size=32`, `optimizer=adam`) "
    "or `name=low..high` for an inclusive range (e.g. `learning_rate=1e-4..1e-2`; either end may be empty)."
)
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")


def parse_param_filters(raw: list[str] | None) -> list[ParamFilter]:
    out: list[ParamFilter] = []
    for item in raw or []:
        name, sep, value = item.partition("=")
        if not sep or not _NAME.match(name) or not value:
            raise InvalidSpec(f"param: {item!r} is not `name=value` or `name=low..high`")
        if ".." in value:
            lo, _, hi = value.partition("..")
            try:
                out.append(ParamFilter(name, low=float(lo) if lo else None, high=float(hi) if hi else None))
            except ValueError as exc:
                raise InvalidSpec(f"param: the range in {item!r} must be numbers, like 1e-4..1e-2") from exc
        else:
            parsed: object = value
            if value in ("true", "false"):
                parsed = value == "true"
            else:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
            out.append(ParamFilter(name, equals=parsed))
    return out


ParamQuery = Annotated[list[str] | None, Query(description=_PARAM_HELP, max_length=20)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
RunClass = Literal["diverged", "rises_after_min", "stuck_at_chance", "noisy", "slow", "converged"]


@router.get("/sweeps/{sweep_id}/trials", response_model=Page[ConfigRecord], responses=ERRORS)
def list_trials(
    sweep_id: int,
    db: DbDep,
    _: ReaderDep,
    state: Literal["waiting", "running", "completed", "failed", "cancelled"] | None = None,
    param: ParamQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[ConfigRecord]:
    filters = parse_param_filters(param)
    with db.transaction() as s:
        sweeps_repo.get_sweep(s, sweep_id=sweep_id)
        items, total = runs_repo.list_configs(
            s, sweep_id=sweep_id, state=state, filters=filters, limit=limit, offset=offset
        )
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/sweeps/{sweep_id}/trials/{config_id}", response_model=ConfigRecord, responses=ERRORS)
def get_trial(sweep_id: int, config_id: int, db: DbDep, _: ReaderDep) -> ConfigRecord:
    with db.transaction() as s:
        return runs_repo.get_config(s, sweep_id=sweep_id, config_id=config_id)


@router.get("/sweeps/{sweep_id}/runs", response_model=Page[RunRecord], responses=ERRORS)
def list_runs(
    sweep_id: int,
    db: DbDep,
    _: ReaderDep,
    status: Literal["running", "completed", "nonfinite", "cancelled", "error"] | None = None,
    run_class: RunClass | None = None,
    seed: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    config_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    param: ParamQuery = None,
    limit: Limit = 100,
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


@router.get("/runs/{run_id}", response_model=RunRecord, responses=ERRORS)
def get_run(run_id: int, db: DbDep, _: ReaderDep) -> RunRecord:
    with db.transaction() as s:
        return runs_repo.get_run(s, run_id=run_id)


@router.get("/runs/{run_id}/curve", response_model=CurveOut, responses=ERRORS)
def get_curve(run_id: int, db: DbDep, _: ReaderDep) -> CurveOut:
    """Per-epoch metrics (epoch 0 is the evaluation at initialisation), plus mini-batch losses if recorded."""
    with db.transaction() as s:
        run = runs_repo.get_run(s, run_id=run_id)
        points = runs_repo.curve(s, run_id=run_id)
    return CurveOut(run_id=run_id, points=points, step_losses=run.step_losses)
