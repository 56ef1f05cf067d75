"""The dashboard's HTML pages: the sweeps list, a sweep, a configuration, a run.

Pages are server-rendered (``service.api.templating``) and draw their plots
with Plotly.js (``routes.static``). Plot data comes from the small JSON
endpoints of ``routes.dashboard``, aggregated on the server
(``service.core.plots``): a page of a 10,000-run sweep receives its grid, not
its runs. Who may read a page is decided in ``service.api.deps`` (``page_gate``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from service.api.csv_export import csv_response
from service.api.deps import DbDep, HeadlinesDep, SettingsDep, page_gate
from service.api.templating import CLASS_STYLE, loss_unit, render_error, render_page
from service.core import plots
from service.core.db import Database
from service.core.errors import NotFound
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.results.loading import load
from service.core.results.sweep_data import SweepData
from service.core.results.training_settings import configuration_settings, settings_text, workload_defaults
from service.core.results.views import config_detail, configs_view
from service.core.sharpness_plots import run_sharpness, sharpness_band
from service.core.states import ACTIVE_SWEEP_STATES, SweepState

router = APIRouter()
PAGE_SIZE = 25
CONFIG_PAGE_SIZE = 50
SWEEP_STATES = tuple(SweepState)
SORTS = {
    "-created": "newest first",
    "created": "oldest first",
    "name": "name A-Z",
    "-name": "name Z-A",
    "state": "state A-Z",
    "-state": "state Z-A",
}


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/sweeps", status_code=307)


@router.get("/sweeps", include_in_schema=False)
def sweeps_page(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    headlines: HeadlinesDep,
    state: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    workload: Annotated[str, Query(max_length=200)] = "",
    sort: str = "-created",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE,
) -> Response:
    if (gate := page_gate(request, db, settings)) is not None:
        return gate
    if state and state not in SWEEP_STATES:
        return render_error(
            request, 422, f"state must be one of {', '.join(SWEEP_STATES)} (or empty for all)"
        )
    if sort not in SORTS:
        return render_error(request, 422, f"sort must be one of {', '.join(SORTS)}")
    with db.transaction() as s:
        items, total = sweeps_repo.list_sweeps(
            s,
            state=state or None,
            name_contains=q or None,
            workload=workload or None,
            sort=sort,
            limit=per_page,
            offset=(page - 1) * per_page,
        )
    rows = [{"sweep": sw, "headline": headlines.headline(db, sw)} for sw in items]
    live = any(sw.state in ACTIVE_SWEEP_STATES for sw in items)
    pages = max(1, -(-total // per_page))
    base: dict[str, Any] = {"state": state, "q": q, "workload": workload, "sort": sort}
    if per_page != PAGE_SIZE:
        base["per_page"] = per_page

    def link(p: int) -> str:
        return "/sweeps?" + urlencode({**{k: v for k, v in base.items() if v}, "page": p})

    return render_page(
        request,
        "sweeps.html",
        {
            "title": "Sweeps",
            "rows": rows,
            "total": total,
            "page": page,
            "pages": pages,
            "first": (page - 1) * per_page + 1,
            "last": min(page * per_page, total),
            "prev_link": link(page - 1) if page > 1 else None,
            "next_link": link(page + 1) if page < pages else None,
            "filters": base,
            "states": SWEEP_STATES,
            "sorts": SORTS,
            "live": live,
        },
    )


def _load_sweep(db: Database, sweep_id: int) -> SweepData:
    with db.transaction() as s:
        return load(s, sweep_id=sweep_id, cache=db.analysis_cache)


@router.get("/sweeps/{sweep_id}", include_in_schema=False)
def sweep_page(
    request: Request,
    sweep_id: int,
    db: DbDep,
    settings: SettingsDep,
    cpage: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    csort: Literal["success", "-success", "config"] = "-success",
) -> Response:
    if (gate := page_gate(request, db, settings)) is not None:
        return gate
    try:
        data = _load_sweep(db, sweep_id)
    except NotFound as exc:
        return render_error(request, 404, exc.detail)
    configs = configs_view(data)
    if csort == "config":
        configs.sort(key=lambda c: c["config_id"])
    else:
        sign = -1 if csort == "-success" else 1
        configs.sort(key=lambda c: (sign * (c["summary"]["success_rate"] or 0.0), c["config_id"]))
    cpages = max(1, -(-len(configs) // CONFIG_PAGE_SIZE))
    shown = configs[(cpage - 1) * CONFIG_PAGE_SIZE : cpage * CONFIG_PAGE_SIZE]
    dims = plots.swept_dimensions(data)
    sweep = data.sweep
    dash = settings.optuna_dashboard_url
    return render_page(
        request,
        "sweep.html",
        {
            "title": f"Sweep {sweep.id}: {sweep.name}",
            "sweep": sweep,
            "configs": shown,
            "n_configs_finished": len(configs),
            "cpage": cpage,
            "cpages": cpages,
            "csort": csort,
            "dims": dims,
            "optuna_url": f"{dash.rstrip('/')}/dashboard/studies/{sweep.study_id}" if dash else None,
            "page_data": {
                "sweep_id": sweep.id,
                "state": sweep.state,
                "runs_done": sweep.runs_done,
                "class_style": CLASS_STYLE,
            },
        },
    )


@router.get("/sweeps/{sweep_id}/configs/{config_id}", include_in_schema=False)
def config_page(
    request: Request, sweep_id: int, config_id: int, db: DbDep, settings: SettingsDep
) -> Response:
    if (gate := page_gate(request, db, settings)) is not None:
        return gate
    try:
        data = _load_sweep(db, sweep_id)
        with db.transaction() as s:
            config = runs_repo.get_config(s, sweep_id=sweep_id, config_id=config_id)
            runs, _ = runs_repo.list_runs(s, sweep_id=sweep_id, config_id=config_id, limit=10_000)
            curves = runs_repo.curves_for_runs(s, run_ids=[r.id for r in runs])
            defaults = workload_defaults(s, data.sweep.spec)
    except NotFound as exc:
        return render_error(request, 404, exc.detail)
    detail = config_detail(data, config_id)
    band = plots.seed_band(runs, curves)
    return render_page(
        request,
        "config.html",
        {
            "title": f"Configuration {config_id} of sweep {sweep_id}",
            "sweep": data.sweep,
            "config": config,
            "trained_with": settings_text(configuration_settings(defaults, config.params)),
            "detail": detail,
            "runs": runs,
            "swept": set(data.swept),
            "page_data": {
                "band": band,
                "sharpness": sharpness_band(runs, curves),
                "class_style": CLASS_STYLE,
                "loss_unit": loss_unit(data.sweep),
            },
        },
    )


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, run_id: int, db: DbDep, settings: SettingsDep) -> Response:
    if (gate := page_gate(request, db, settings)) is not None:
        return gate
    try:
        with db.transaction() as s:
            run = runs_repo.get_run(s, run_id=run_id)
            points = runs_repo.curve(s, run_id=run_id)
            sweep = sweeps_repo.get_sweep(s, sweep_id=run.sweep_id)
    except NotFound as exc:
        return render_error(request, 404, exc.detail)
    return render_page(
        request,
        "run.html",
        {
            "title": f"Run {run.id} (seed {run.seed})",
            "run": run,
            "sweep": sweep,
            "metrics": sorted(run.metrics.items()),
            "page_data": {
                "curves": plots.run_curves(points, run.step_losses),
                "sharpness": run_sharpness(points),
                "run_class": run.run_class,
                "class_style": CLASS_STYLE,
                "loss_unit": loss_unit(sweep),
            },
        },
    )


@router.get("/sweeps/{sweep_id}/export.csv", include_in_schema=False)
def export_page(request: Request, sweep_id: int, db: DbDep, settings: SettingsDep) -> Response:
    """The CSV export behind the page's link; unlike /v1/.../export.csv it accepts the page cookie."""
    if (gate := page_gate(request, db, settings)) is not None:
        return gate
    return csv_response(db, sweep_id)
