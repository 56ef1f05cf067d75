"""Study dashboards: HTML pages of the same service (DESIGN §6-7).

Pages are server-rendered (Jinja2, autoescape on) and draw their plots with
Plotly.js served from the installed ``plotly`` package, so nothing loads from
outside the host. Plot data comes from small JSON endpoints that aggregate on
the server (``service.core.plots``): a page of a 10,000-run sweep receives
its grid, not its runs.

Read access. With ``read_access = "token"`` a page needs a token: open any
page once with ``?token=<secret>``; the server checks it, sets an HttpOnly
``sweeps_token`` cookie (SameSite=Strict) and redirects to the same address
without the secret. Pages and the dashboard's JSON endpoints then accept the
cookie (or an ``Authorization: Bearer`` header). The cookie is only ever
accepted for reads: every write still needs the bearer header.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import plotly
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from service.api.deps import DbDep, SettingsDep
from service.api.routes.analysis import export_csv
from service.api.routes.sweeps import ERRORS
from service.core import plots, tokens
from service.core.analysis import FAILURE_CLASSES, RUN_CLASSES, report_to_markdown
from service.core.config import Settings
from service.core.db import Database
from service.core.errors import InvalidSpec, NotFound, Unauthorized
from service.core.records import SweepRecord
from service.core.repo import runs as runs_repo
from service.core.repo import sweeps as sweeps_repo
from service.core.results.loading import load
from service.core.results.sweep_data import SweepData
from service.core.results.views import config_detail, configs_view, region_view

log = logging.getLogger(__name__)

router = APIRouter()
_HERE = Path(__file__).resolve().parent.parent
_STATIC = _HERE / "static"
_PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
COOKIE = "sweeps_token"
PAGE_SIZE = 25
CONFIG_PAGE_SIZE = 50
SWEEP_STATES = ("queued", "running", "completed", "failed", "cancelled")
SORTS = {
    "-created": "newest first",
    "created": "oldest first",
    "name": "name A-Z",
    "-name": "name Z-A",
    "state": "state A-Z",
    "-state": "state Z-A",
}
# Okabe & Ito (2008) colours, one per run class, and a marker shape each so
# that nothing depends on colour alone.
CLASS_STYLE: dict[str, dict[str, str]] = {
    "diverged": {"color": "#D55E00", "symbol": "x", "label": "diverged"},
    "rises_after_min": {"color": "#E69F00", "symbol": "triangle-up", "label": "rises after its minimum"},
    "stuck_at_chance": {"color": "#CC79A7", "symbol": "square", "label": "stuck at chance"},
    "noisy": {"color": "#56B4E9", "symbol": "diamond", "label": "noisy"},
    "slow": {"color": "#0072B2", "symbol": "circle-open", "label": "slow"},
    "converged": {"color": "#009E73", "symbol": "circle", "label": "converged"},
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["when"] = _when
    env.globals["CLASS_STYLE"] = CLASS_STYLE
    env.globals["FAILURE_CLASSES"] = FAILURE_CLASSES
    env.globals["RUN_CLASSES"] = RUN_CLASSES
    return env


# ----------------------------------------------------------------- formatting


def _num(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if v != v or v in (float("inf"), float("-inf")):
        return "non-finite"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.{max(digits - 1, 0)}e}"
    return f"{v:.{digits}g}"


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.0f}%"


def _when(v: datetime | None) -> str:
    return "—" if v is None else v.strftime("%Y-%m-%d %H:%M UTC")


_MD_INLINE = re.compile(r"\*\*(.+?)\*\*|`(.+?)`")


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _MD_INLINE.finditer(text):
        out.append(html.escape(text[pos : m.start()]))
        out.append(
            f"<strong>{html.escape(m.group(1))}</strong>"
            if m.group(1)
            else f"<code>{html.escape(m.group(2))}</code>"
        )
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def markdown_html(md: str) -> Markup:
    """The small Markdown subset of ``report_to_markdown`` (headings, bullets, bold, code) as HTML.

    Every piece of text is escaped before tags are added, so a sweep name or
    a parameter value cannot inject markup.
    """
    parts: list[str] = []
    in_list = False
    for line in md.splitlines():
        if line.startswith("- "):
            if not in_list:
                parts.append("<ul>")
                in_list = True
            parts.append(f"<li>{_inline(line[2:])}</li>")
            continue
        if in_list:
            parts.append("</ul>")
            in_list = False
        if line.startswith("## "):
            parts.append(f"<h3>{_inline(line[3:])}</h3>")
        elif line.startswith("# "):
            continue  # the page has its own heading
        elif line.strip():
            parts.append(f"<p>{_inline(line)}</p>")
    if in_list:
        parts.append("</ul>")
    return Markup("\n".join(parts))  # noqa: S704 - built from escaped pieces above


templates = Jinja2Templates(env=_environment())


# ----------------------------------------------------------------- access


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.query_params.get("token") or request.cookies.get(COOKIE) or None


def _valid(db: Database, secret: str | None) -> bool:
    if not secret:
        return False
    with db.transaction() as s:
        return tokens.verify(s, secret=secret) is not None


def page_reader(request: Request, db: DbDep, settings: SettingsDep) -> None:
    """Reads by the dashboard's JSON endpoints: the API's rule, with the page cookie also accepted."""
    if settings.read_access == "token" and not _valid(db, _secret(request)):
        raise Unauthorized(
            "this server requires an API token for reads: send `Authorization: Bearer <token>`, "
            "or open a dashboard page once with `?token=<token>`"
        )


PageReader = Annotated[None, Depends(page_reader)]


def _gate(request: Request, db: Database, settings: Settings) -> Response | None:
    """None when the page may be shown; otherwise the response to send instead."""
    if settings.read_access != "token":
        return None
    query_secret = request.query_params.get("token")
    if query_secret:
        if not _valid(db, query_secret):
            return _error(
                request, 401, "That token is unknown or revoked. Create one with `sweeps token create NAME`."
            )
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(
            COOKIE, query_secret, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return resp
    if _valid(db, _secret(request)):
        return None
    return _error(
        request,
        401,
        "This server requires an API token to read sweeps. Open this page once with ?token=<your token> "
        "appended to the address (a cookie then keeps you signed in); create a token with "
        "`sweeps token create NAME`.",
    )


def _error(request: Request, status: int, message: str) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "title": f"Error {status}"},
        status_code=status,
    )


def _page(request: Request, name: str, context: dict[str, Any]) -> Response:
    return templates.TemplateResponse(request, name, context)


# ----------------------------------------------------------------- static files


@router.get("/static/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    return FileResponse(
        _PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    path = (_STATIC / name).resolve()
    if path.parent != _STATIC.resolve() or path.suffix not in _STATIC_TYPES or not path.is_file():
        return Response(status_code=404)
    return FileResponse(path, media_type=_STATIC_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})


# ----------------------------------------------------------------- pages


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/sweeps", status_code=307)


_headlines: OrderedDict[tuple[int, int, str], str] = OrderedDict()
_headline_lock = threading.Lock()


def _headline(db: Database, sweep: SweepRecord) -> str:
    """The diagnosis headline, cached by (sweep, finished runs, state): a list page re-analyses nothing."""
    if sweep.runs_done == 0:
        return "No finished runs yet." if sweep.state in ("queued", "running") else "No finished runs."
    key = (sweep.id, sweep.runs_done, sweep.state)
    with _headline_lock:
        if key in _headlines:
            return _headlines[key]
    with db.transaction() as s:
        text = load(s, sweep_id=sweep.id, cache=db.analysis_cache).report().headline
    with _headline_lock:
        _headlines[key] = text
        while len(_headlines) > 4096:
            _headlines.popitem(last=False)
    return text


@router.get("/sweeps", include_in_schema=False)
def sweeps_page(
    request: Request,
    db: DbDep,
    settings: SettingsDep,
    state: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    workload: Annotated[str, Query(max_length=200)] = "",
    sort: str = "-created",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = PAGE_SIZE,
) -> Response:
    if (gate := _gate(request, db, settings)) is not None:
        return gate
    if state and state not in SWEEP_STATES:
        return _error(request, 422, f"state must be one of {', '.join(SWEEP_STATES)} (or empty for all)")
    if sort not in SORTS:
        return _error(request, 422, f"sort must be one of {', '.join(SORTS)}")
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
    rows = [{"sweep": sw, "headline": _headline(db, sw)} for sw in items]
    live = any(sw.state in ("queued", "running") for sw in items)
    pages = max(1, -(-total // per_page))
    base: dict[str, Any] = {"state": state, "q": q, "workload": workload, "sort": sort}
    if per_page != PAGE_SIZE:
        base["per_page"] = per_page

    def link(p: int) -> str:
        return "/sweeps?" + urlencode({**{k: v for k, v in base.items() if v}, "page": p})

    return _page(
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
    if (gate := _gate(request, db, settings)) is not None:
        return gate
    try:
        data = _load_sweep(db, sweep_id)
    except NotFound as exc:
        return _error(request, 404, exc.detail)
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
    return _page(
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
    if (gate := _gate(request, db, settings)) is not None:
        return gate
    try:
        data = _load_sweep(db, sweep_id)
        with db.transaction() as s:
            config = runs_repo.get_config(s, sweep_id=sweep_id, config_id=config_id)
            runs, _ = runs_repo.list_runs(s, sweep_id=sweep_id, config_id=config_id, limit=10_000)
            curves = runs_repo.curves_for_runs(s, run_ids=[r.id for r in runs])
    except NotFound as exc:
        return _error(request, 404, exc.detail)
    detail = config_detail(data, config_id)
    band = plots.seed_band(runs, curves)
    return _page(
        request,
        "config.html",
        {
            "title": f"Configuration {config_id} of sweep {sweep_id}",
            "sweep": data.sweep,
            "config": config,
            "detail": detail,
            "runs": runs,
            "swept": set(data.swept),
            "page_data": {"band": band, "class_style": CLASS_STYLE, "loss_unit": _loss_unit(data)},
        },
    )


@router.get("/runs/{run_id}", include_in_schema=False)
def run_page(request: Request, run_id: int, db: DbDep, settings: SettingsDep) -> Response:
    if (gate := _gate(request, db, settings)) is not None:
        return gate
    try:
        with db.transaction() as s:
            run = runs_repo.get_run(s, run_id=run_id)
            points = runs_repo.curve(s, run_id=run_id)
            sweep = sweeps_repo.get_sweep(s, sweep_id=run.sweep_id)
    except NotFound as exc:
        return _error(request, 404, exc.detail)
    loss_unit = "nats" if _preset_loss(sweep) != "mse" else "squared error"
    return _page(
        request,
        "run.html",
        {
            "title": f"Run {run.id} (seed {run.seed})",
            "run": run,
            "sweep": sweep,
            "metrics": sorted(run.metrics.items()),
            "page_data": {
                "curves": plots.run_curves(points, run.step_losses),
                "run_class": run.run_class,
                "class_style": CLASS_STYLE,
                "loss_unit": loss_unit,
            },
        },
    )


@router.get("/sweeps/{sweep_id}/export.csv", include_in_schema=False)
def export_page(request: Request, sweep_id: int, db: DbDep, settings: SettingsDep) -> Response:
    """The CSV export behind the page's link; unlike /v1/.../export.csv it accepts the page cookie."""
    if (gate := _gate(request, db, settings)) is not None:
        return gate
    return export_csv(sweep_id, db, None)


def _preset_loss(sweep: SweepRecord) -> str | None:
    preset = sweep.spec.get("workload", {}).get("preset")
    if not preset:
        return None
    from service.core.workloads import PRESETS

    info = PRESETS.get(preset)
    return info.loss if info is not None else None


def _loss_unit(data: SweepData) -> str:
    return "squared error" if _preset_loss(data.sweep) == "mse" else "nats"


# ----------------------------------------------------------------- dashboard JSON

_PLOT_RESERVED = {"x", "y", "token"}


@router.get("/v1/sweeps/{sweep_id}/progress", tags=["dashboard"], responses=ERRORS)
def progress(sweep_id: int, db: DbDep, _: PageReader) -> dict[str, Any]:
    """A compact progress record for a page that polls: state, runs done, trial states."""
    with db.transaction() as s:
        sw = sweeps_repo.get_sweep(s, sweep_id=sweep_id)
    p = sw.progress
    return {
        "sweep_id": sw.id,
        "state": sw.state,
        "runs_done": sw.runs_done,
        "runs_total": sw.runs_total,
        "configs": {
            "waiting": p.waiting,
            "running": p.running,
            "completed": p.completed,
            "failed": p.failed,
            "cancelled": p.cancelled,
            "total": p.total,
        },
        "updated_at": sw.updated_at.isoformat(),
        "finished_at": sw.finished_at.isoformat() if sw.finished_at else None,
    }


@router.get("/v1/sweeps/{sweep_id}/plots", tags=["dashboard"], responses=ERRORS)
def sweep_plots(sweep_id: int, db: DbDep, _: PageReader) -> dict[str, Any]:
    """Everything the sweep page draws except the heatmaps, aggregated per grid point:
    swept dimensions, final loss versus learning rate per batch size, the edge of stability
    with the fitted exponent, and the diagnosis (JSON and HTML)."""
    data = _load_sweep(db, sweep_id)
    report = data.report()
    md = report_to_markdown(report)
    return {
        "sweep_id": sweep_id,
        "state": data.sweep.state,
        "runs_done": data.sweep.runs_done,
        "dims": plots.swept_dimensions(data),
        "loss_unit": _loss_unit(data),
        "loss_vs_lr": plots.loss_vs_lr(data),
        "edge": plots.edge_plot(data),
        "headline": report.headline,
        "report_html": str(markdown_html(md)),
    }


@router.get("/v1/sweeps/{sweep_id}/heatmap", tags=["dashboard"], responses=ERRORS)
def heatmap(
    sweep_id: int,
    request: Request,
    db: DbDep,
    _: PageReader,
    x: Annotated[str, Query(max_length=64)] = "learning_rate",
    y: Annotated[str, Query(max_length=64)] = "batch_size",
) -> dict[str, Any]:
    """The success-rate map of /regions, slimmed for drawing (each cell names one configuration
    when it holds one). Other query parameters fix a slice, e.g. `?x=beta_1&y=beta_2&batch_size=4`."""
    fixed = {k: v for k, v in request.query_params.items() if k not in _PLOT_RESERVED}
    if x == y:
        raise InvalidSpec("x and y must be two different dimensions")
    data = _load_sweep(db, sweep_id)
    region = plots.compact_region(region_view(data, x=x, y=y, fixed=fixed))
    region["edges"] = [
        {"group": e["group"], "edge": e["edge"], "bracket": e["bracket"], "censored": e["censored"]}
        for e in region.get("edges", [])
    ]
    return region


@router.get("/v1/sweeps/{sweep_id}/configs/{config_id}/band", tags=["dashboard"], responses=ERRORS)
def config_band(
    sweep_id: int,
    config_id: int,
    db: DbDep,
    _: PageReader,
    max_points: Annotated[int, Query(ge=2, le=5000)] = 300,
) -> dict[str, Any]:
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
