"""Configurations of a sweep: their place in the queue (state, attempts, Optuna trial) and what
their seeds did (classes, success rate with a Wilson 95% interval, loss and accuracy spreads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service.api.deps import DbDep, ReaderDep
from service.api.query_params import Offset, ParamQuery, RunClass, parse_param_filters
from service.api.schemas.common import SWEEP_ERRORS, Page
from service.api.schemas.configs import ConfigDetailOut, ConfigOut
from service.core.repo import runs as runs_repo
from service.core.results.loading import load
from service.core.results.training_settings import configuration_settings, workload_defaults
from service.core.results.views import config_detail, configs_view
from service.core.states import ConfigState

router = APIRouter(prefix="/v1/sweeps/{sweep_id}", tags=["configurations"])


@router.get("/configs", response_model=Page[ConfigOut], responses=SWEEP_ERRORS)
def list_configs(
    sweep_id: int,
    db: DbDep,
    _: ReaderDep,
    state: ConfigState | None = None,
    param: ParamQuery = None,
    run_class: Annotated[
        RunClass | None, Query(description="configs with at least one run of this class")
    ] = None,
    min_success: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_success: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Offset = 0,
) -> Page[ConfigOut]:
    """Every configuration by id, with its seeds aggregated once one has finished. `run_class`,
    `min_success` and `max_success` keep only configurations with finished seeds that match."""
    filters = parse_param_filters(param)
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    summaries = {
        c["config_id"]: c["summary"]
        for c in configs_view(data, run_class=run_class, min_success=min_success, max_success=max_success)
    }
    by_outcome = run_class is not None or min_success is not None or max_success is not None
    with db.transaction() as s:
        defaults = workload_defaults(s, data.sweep.spec)
        records, total = runs_repo.list_configs(
            s,
            sweep_id=sweep_id,
            state=state,
            filters=filters,
            config_ids=summaries.keys() if by_outcome else None,
            limit=limit,
            offset=offset,
        )
    items = [
        ConfigOut.of(r, summaries.get(r.id), configuration_settings(defaults, r.params)) for r in records
    ]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/configs/{config_id}", response_model=ConfigDetailOut, responses=SWEEP_ERRORS)
def get_config(sweep_id: int, config_id: int, db: DbDep, _: ReaderDep) -> ConfigDetailOut:
    """One configuration, its seeds also grouped by init seed and by data-order seed."""
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    with db.transaction() as s:
        record = runs_repo.get_config(s, sweep_id=sweep_id, config_id=config_id)
        defaults = workload_defaults(s, data.sweep.spec)
    return ConfigDetailOut.of_detail(
        record, config_detail(data, config_id), configuration_settings(defaults, record.params)
    )
