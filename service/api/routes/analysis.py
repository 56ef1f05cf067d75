"""Analysis of a sweep, aggregated on read: regions, edge of stability, the diagnosis report,
and the CSV export. (Configurations over their seeds are in ``routes.configs``.)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from service.api.csv_export import csv_response
from service.api.deps import DbDep, ReaderDep
from service.api.query_params import RegionAxis, RegionMetric, region_slice
from service.api.schemas.analysis import EdgeReportOut, RegionOut, ReportOut
from service.api.schemas.common import SWEEP_ERRORS
from service.core.analysis.regions import check_metric
from service.core.results.loading import load
from service.core.results.reports import report_json, report_markdown, stored_report
from service.core.results.views import edge_view, region_view

router = APIRouter(prefix="/v1/sweeps/{sweep_id}", tags=["analysis"])


# exclude_unset: a key the analysis leaves out (see schemas.analysis) stays out of the JSON.
@router.get("/regions", response_model=RegionOut, response_model_exclude_unset=True, responses=SWEEP_ERRORS)
def regions(
    sweep_id: int,
    request: Request,
    db: DbDep,
    _: ReaderDep,
    x: RegionAxis = "learning_rate",
    y: RegionAxis = "batch_size",
    metric: RegionMetric = "success",
) -> Any:
    """Matrix over two swept dimensions, each cell coloured by `metric` (`value`) and carrying
    its success rate and fluctuation. Other query parameters fix a slice, e.g.
    `?x=beta_1&y=beta_2&learning_rate=0.001`; dimensions left free are pooled."""
    fixed = region_slice(request, x=x, y=y, reserved=("x", "y", "metric"))
    check_metric(metric)
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    return region_view(data, x=x, y=y, fixed=fixed, metric=metric)


@router.get("/edge", response_model=EdgeReportOut, responses=SWEEP_ERRORS)
def edge(sweep_id: int, db: DbDep, _: ReaderDep) -> Any:
    """Edge of stability per batch size and slice (geometric mean of the bracket), the log-log
    scaling fit with its bootstrap interval, and LR sensitivity (Wortsman et al. 2023)."""
    with db.transaction() as s:
        stored = stored_report(s, sweep_id=sweep_id)
        if stored is not None:
            return stored.edge
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    return edge_view(data)


@router.get(
    "/report",
    response_model=ReportOut,
    response_model_exclude_unset=True,
    responses={**SWEEP_ERRORS, 200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
def report(sweep_id: int, request: Request, db: DbDep, _: ReaderDep) -> Any:
    """The diagnosis in plain language: JSON, or Markdown with `Accept: text/markdown`."""
    markdown = "text/markdown" in request.headers.get("accept", "")
    with db.transaction() as s:
        stored = stored_report(s, sweep_id=sweep_id)
        if stored is not None:
            if markdown:
                return PlainTextResponse(stored.markdown, media_type="text/markdown")
            return stored.report
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    if markdown:
        return PlainTextResponse(report_markdown(data), media_type="text/markdown")
    return report_json(data)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={**SWEEP_ERRORS, 200: {"content": {"text/csv": {}}}},
)
def export_csv(sweep_id: int, db: DbDep, _: ReaderDep) -> StreamingResponse:
    """One row per run: configuration, seeds, class, and the metrics behind the class."""
    return csv_response(db, sweep_id)
