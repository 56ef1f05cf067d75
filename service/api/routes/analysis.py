"""Analysis of a sweep, aggregated on read: configurations over seeds, regions,
edge of stability, the diagnosis report, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse

from service.api.deps import DbDep, ReaderDep
from service.api.routes.runs import RunClass
from service.api.routes.sweeps import ERRORS
from service.core.errors import InvalidSpec, NotFound
from service.core.repo import analysis_rows as rows_repo
from service.core.results.export import export_rows
from service.core.results.loading import load
from service.core.results.reports import report_json, report_markdown, stored_report
from service.core.results.views import config_detail, configs_view, edge_view, region_view

router = APIRouter(prefix="/v1/sweeps/{sweep_id}", tags=["analysis"])
_RESERVED = {"x", "y"}
_CSV_CHUNK_ROWS = 1000


@router.get("/configs", responses=ERRORS)
def list_configs(
    sweep_id: int,
    db: DbDep,
    _: ReaderDep,
    run_class: Annotated[
        RunClass | None, Query(description="configs with at least one run of this class")
    ] = None,
    min_success: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_success: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Per configuration over its seeds: class histogram, success rate with a Wilson 95% interval,
    median/IQR/IQM of final loss and accuracy, epochs to target."""
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    items = configs_view(data, run_class=run_class, min_success=min_success, max_success=max_success)
    return {"items": items[offset : offset + limit], "total": len(items), "limit": limit, "offset": offset}


@router.get("/configs/{config_id}", responses=ERRORS)
def get_config(sweep_id: int, config_id: int, db: DbDep, _: ReaderDep) -> dict[str, Any]:
    """One configuration over its seeds, with separate views by init seed and by data-order seed."""
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    detail = config_detail(data, config_id)
    if detail is None:
        raise NotFound(
            f"configuration {config_id} of sweep {sweep_id} has no finished runs yet (or does not exist)"
        )
    return detail


@router.get("/regions", responses=ERRORS)
def regions(
    sweep_id: int,
    request: Request,
    db: DbDep,
    _: ReaderDep,
    x: Annotated[str, Query(max_length=64)] = "learning_rate",
    y: Annotated[str, Query(max_length=64)] = "batch_size",
) -> dict[str, Any]:
    """Success-rate matrix over two swept dimensions. Other query parameters fix a slice,
    e.g. `?x=beta_1&y=beta_2&learning_rate=0.001`; dimensions left free are pooled."""
    fixed = {k: v for k, v in request.query_params.items() if k not in _RESERVED}
    if x == y:
        raise InvalidSpec("x and y must be two different dimensions")
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
    return region_view(data, x=x, y=y, fixed=fixed)


@router.get("/edge", responses=ERRORS)
def edge(sweep_id: int, db: DbDep, _: ReaderDep) -> dict[str, Any]:
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
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/markdown": {}}}},
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
    "/export.csv", response_class=StreamingResponse, responses={**ERRORS, 200: {"content": {"text/csv": {}}}}
)
def export_csv(sweep_id: int, db: DbDep, _: ReaderDep) -> StreamingResponse:
    """One row per run: configuration, seeds, class, and the metrics behind the class."""
    with db.transaction() as s:
        data = load(s, sweep_id=sweep_id, cache=db.analysis_cache)
        details = rows_repo.run_details(s, sweep_id=sweep_id)

    def lines() -> Iterator[str]:
        # Chunks of rows, not one chunk per row: every chunk is an ASGI send,
        # and 10,000 of them cost seconds.
        buf = io.StringIO()
        writer = csv.writer(buf)
        for i, row in enumerate(export_rows(data, details), start=1):
            writer.writerow(row)
            if i % _CSV_CHUNK_ROWS == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="sweep-{sweep_id}.csv"'},
    )
