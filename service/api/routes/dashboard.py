"""The JSON the dashboard's pages poll and draw, aggregated on the server (``service.core.plots``)
so that a page of a 10,000-run sweep receives its grid, not its runs. These accept the page
cookie as well as a bearer token (``deps.page_reader``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from service.api.deps import DbDep, PageReader
from service.api.query_params import RegionAxis, RegionMetric, region_slice
from service.api.schemas.common import SWEEP_ERRORS
from service.api.schemas.dashboard import BandOut, HeatmapOut, PlotsOut, PollOut
from service.api.schemas.sweeps import ProgressOut
from service.api.templating import loss_unit, markdown_html
from service.core import plots
from service.core.analysis import report_to_markdown
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.results.loading import load
from service.core.results.views import region_view
from service.core.states import SweepState

router = APIRouter(prefix="/v1/sweeps/{sweep_id}", tags=["dashboard"])


@router.get("/progress", response_model=PollOut, responses=SWEEP_ERRORS)
def progress(sweep_id: int, db: DbDep, _: PageReader) -> PollOut:
    """A compact progress record for a page that polls: state, runs done, trial states."""
    with db.transaction() as s:
        sw = sweeps_repo.get_sweep(s, sweep_id=sweep_id)
    return PollOut(
        sweep_id=sw.id,
        state=SweepState(sw.state),
        runs_done=sw.runs_done,
        runs_total=sw.runs_total,
        configs=ProgressOut.of(sw.progress),
        updated_at=sw.updated_at.isoformat(),
        finished_at=sw.finished_at.isoformat() if sw.finished_at else None,
    )


@router.get("/plots", response_model=PlotsOut, responses=SWEEP_ERRORS)
def sweep_plots(sweep_id: int, db: DbDep, _: PageReader) -> Any:
    """Everything the sweep page draws except the heatmaps, aggregated per grid point:
    swept dimensions, final loss versus learning rate per batch size, the edge of stability
    with the fitted exponent, and the diagnosis (JSON and HTML)."""
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    report = data.report()
    md = report_to_markdown(report)
    return {
        "sweep_id": sweep_id,
        "state": data.sweep.state,
        "runs_done": data.sweep.runs_done,
        "dims": plots.swept_dimensions(data),
        "loss_unit": loss_unit(data.sweep),
        "loss_vs_lr": plots.loss_vs_lr(data),
        "edge": plots.edge_plot(data),
        "headline": report.headline,
        "report_html": str(markdown_html(md)),
        "fluctuation": plots.fluctuation_plot(data),
    }


# exclude_unset: a key the region leaves out (see schemas.analysis) stays out of the JSON.
@router.get("/heatmap", response_model=HeatmapOut, response_model_exclude_unset=True, responses=SWEEP_ERRORS)
def heatmap(
    sweep_id: int,
    request: Request,
    db: DbDep,
    _: PageReader,
    x: RegionAxis = "learning_rate",
    y: RegionAxis = "batch_size",
    metric: RegionMetric = "success",
) -> Any:
    """The map of /regions (coloured by `metric`), slimmed for drawing (each cell names one
    configuration when it holds one). Other query parameters fix a slice, e.g.
    `?x=beta_1&y=beta_2&batch_size=4`."""
    # "token": a page may pass its token in the address (see deps.page_gate); it is no dimension.
    fixed = region_slice(request, x=x, y=y, reserved=("x", "y", "token", "metric"))
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    region = plots.compact_region(region_view(data, x=x, y=y, fixed=fixed, metric=metric))
    region["edges"] = [
        {
            "group": e["group"],
            "edge": e["edge"],
            "bracket": e["bracket"],
            "censored": e["censored"],
            "bound": e.get("bound"),
        }
        for e in region.get("edges", [])
    ]
    return region


@router.get("/configs/{config_id}/band", response_model=BandOut, responses=SWEEP_ERRORS)
def config_band(
    sweep_id: int,
    config_id: int,
    db: DbDep,
    _: PageReader,
    max_points: Annotated[int, Query(ge=2, le=5000)] = 300,
) -> Any:
    """Seed curves of one configuration: median and interquartile band of the stable seeds,
    each failed seed apart, sampled at no more than `max_points` epochs."""
    with db.transaction() as s:
        runs_repo.get_config(s, sweep_id=sweep_id, config_id=config_id)
        runs, _total = runs_repo.list_runs(s, sweep_id=sweep_id, config_id=config_id, limit=10_000)
        curves = runs_repo.curves_for_runs(s, run_ids=[r.id for r in runs])
    return {
        "sweep_id": sweep_id,
        "config_id": config_id,
        **plots.seed_band(runs, curves, max_points=max_points),
    }
