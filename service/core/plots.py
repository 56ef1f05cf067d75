"""What the dashboard plots need, aggregated on the server (docs/architecture.md, "Dashboards").

A page never receives every point of every curve: final losses are reduced
to a median and quartiles per (batch size, learning rate), failed seeds to
one marker per grid point, and seed curves to a median with an interquartile
band sampled at no more than ``max_points`` epochs. The payload of a
10,000-run sweep is therefore the size of its grid, not of its runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.core.analysis import FAILURE_CLASSES
from service.core.analysis.regions import sort_key
from service.core.records import CurvePoint, RunRecord
from service.core.results.sweep_data import FINISHED, LR, SweepData

BATCH = "batch_size"
CURVE_METRICS = ("loss", "accuracy")  # drawn per seed and as a band
# Drawn as a band only: the running mean Keras displays, beside the full-set loss (report 1).
BAND_ONLY_METRICS = ("running_loss",)
MAX_DRAWN_SEEDS = 32  # seeds drawn one by one; beyond that only the band says anything


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _quartiles(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    q25, med, q75 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.5, 0.75])
    return float(q25), float(med), float(q75)


def swept_dimensions(data: SweepData) -> dict[str, list[Any]]:
    """Dimensions with more than one value, in a stable order (lr, batch size, betas first)."""
    first = [LR, BATCH, "beta_1", "beta_2"]
    dims = data.swept
    ordered = [d for d in first if d in dims] + sorted(d for d in dims if d not in first)
    return {d: list(dims[d]) for d in ordered}


def loss_vs_lr(data: SweepData) -> dict[str, Any] | None:
    """Final loss against learning rate, one series per batch size, pooled over other dimensions.

    Each grid point carries the median and quartiles of the finite final losses
    of all its seeds, and how many seeds failed (class in FAILURE_CLASSES) with
    the median of their finite final losses; a failure without a finite loss
    (diverged to NaN/Inf) is counted in ``failed_nonfinite`` and drawn at the
    top of the axis by the page.
    """
    if LR not in data.swept:
        return None
    groups: dict[Any, dict[float, dict[str, list[Any]]]] = {}
    for r in data.rows:
        if r.status not in FINISHED or r.run_class is None:
            continue
        lr = _finite(r.params.get(LR))
        if lr is None:
            continue
        cell = groups.setdefault(r.params.get(BATCH), {}).setdefault(
            lr, {"all": [], "failed": [], "nonfinite": []}
        )
        loss = _finite(r.final_loss)
        if loss is not None:
            cell["all"].append(loss)
        if r.run_class in FAILURE_CLASSES:
            (cell["failed"] if loss is not None else cell["nonfinite"]).append(r.run_id)
            if loss is not None:
                cell.setdefault("failed_loss", []).append(loss)
    series = []
    for bs in sorted(groups, key=sort_key):
        pts = []
        for lr in sorted(groups[bs]):
            c = groups[bs][lr]
            q25, med, q75 = _quartiles(c["all"])
            _, fmed, _ = _quartiles(c.get("failed_loss", []))
            n = len(c["all"]) + len(c["nonfinite"])
            pts.append(
                {
                    "lr": lr,
                    "n": n,
                    "median": med,
                    "q25": q25,
                    "q75": q75,
                    "failed": len(c["failed"]) + len(c["nonfinite"]),
                    "failed_nonfinite": len(c["nonfinite"]),
                    "failed_median": fmed,
                }
            )
        series.append({"batch_size": bs, "points": pts})
    return {"pooled_over": [d for d in data.swept if d not in (LR, BATCH)], "l0": data.l0, "series": series}


def edge_plot(data: SweepData) -> dict[str, Any]:
    """Edge of stability per batch size (with its bracket) and the fitted log-log exponent."""
    dims = set(data.swept)
    edges = []
    for e in data.edges():
        if BATCH not in e.group:
            continue
        edges.append(
            {
                "batch_size": e.group[BATCH],
                "slice": {k: v for k, v in e.group.items() if k != BATCH and k in dims},
                "edge": None if e.censored else e.edge,  # a censored edge is drawn at its bound (lo or hi)
                "lo": e.lo,
                "hi": e.hi,
                "censored": e.censored,
                "best_lr": e.best_lr,
            }
        )
    fits = [
        {
            "optimizer": f.optimizer,
            "slope": f.slope,
            "ci": None if f.ci is None else list(f.ci),
            "intercept": f.intercept,
            "expected": f.expected,
            "n_points": f.n_points,
            "reference": f.reference,
        }
        for f in data.fits()
    ]
    return {"edges": edges, "fits": fits}


def fluctuation_plot(data: SweepData) -> dict[str, Any]:
    """Fluctuation against batch size per learning rate (log-log), with each fit's exponent and line.

    One series per group of the report's batch-size fits (docs/architecture.md, "Fluctuation"):
    the median and quartiles over stable seeds at each batch size, the fitted exponent with its
    bootstrap interval, and the intercept that draws the fitted line.
    """
    fl = data.report().fluctuation
    series = []
    for f in fl.fits if fl is not None else ():
        if f.along != BATCH or f.slope is None:
            continue
        lx = [math.log(p.x) for p in f.points]
        ly = [math.log(p.median) for p in f.points]
        intercept = sum(ly) / len(ly) - f.slope * sum(lx) / len(lx)
        series.append(
            {
                "group": dict(f.group),
                "x": [p.x for p in f.points],
                "median": [p.median for p in f.points],
                "q25": [p.q25 for p in f.points],
                "q75": [p.q75 for p in f.points],
                "jump": [p.jump for p in f.points],
                "n": [p.n for p in f.points],
                "slope": f.slope,
                "ci": None if f.ci is None else list(f.ci),
                "intercept": intercept,
                "expected": f.expected,
            }
        )
    return {"measured": bool(fl is not None and fl.measured), "series": series}


def compact_region(region: Mapping[str, Any]) -> dict[str, Any]:
    """A region view with each cell's configuration list cut to what a click needs."""
    out = dict(region)
    cells = []
    for row in region.get("cells", []):
        new_row: list[dict[str, Any] | None] = []
        for c in row:
            if c is None:
                new_row.append(None)
                continue
            ids = c.get("config_ids", [])
            slim = {k: v for k, v in c.items() if k != "config_ids"}
            slim["n_configs"] = len(ids)
            slim["config_id"] = ids[0] if len(ids) == 1 else None
            new_row.append(slim)
        cells.append(new_row)
    out["cells"] = cells
    return out


def _sample_indices(n: int, max_points: int) -> list[int]:
    """At most ``max_points`` evenly spaced indices of 0..n-1, first and last included."""
    if n <= max_points:
        return list(range(n))
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return [int(i) for i in idx]


def _series(points: Sequence[CurvePoint], metric: str) -> list[float | None]:
    return [_finite(getattr(p, metric)) for p in points]


def seed_band(
    runs: Sequence[RunRecord], curves: Mapping[int, Sequence[CurvePoint]], *, max_points: int = 300
) -> dict[str, Any]:
    """Median and interquartile band of the stable seeds' curves, and the failed seeds apart.

    The band is over the seeds whose class is not a failure (docs/architecture.md, "Run classes"); each
    failed seed is its own line so that a diverged or stuck seed is never
    averaged into the band. Epochs are sampled to at most ``max_points``.
    """
    finished = [r for r in runs if r.status in FINISHED and r.run_class is not None]
    stable = [r for r in finished if r.run_class not in FAILURE_CLASSES]
    failed = [r for r in finished if r.run_class in FAILURE_CLASSES]
    n_epochs = max((len(curves.get(r.id, ())) for r in finished), default=0)
    idx = _sample_indices(n_epochs, max_points)
    band: dict[str, Any] = {"epochs": idx, "n_stable": len(stable)}
    for metric in CURVE_METRICS + BAND_ONLY_METRICS:
        med, q25, q75 = [], [], []
        cols = [_series(curves.get(r.id, ()), metric) for r in stable]
        for i in idx:
            vals = [c[i] for c in cols if i < len(c) and c[i] is not None]
            lo, m, hi = _quartiles([v for v in vals if v is not None])
            med.append(m)
            q25.append(lo)
            q75.append(hi)
        band[metric] = {"median": med, "q25": q25, "q75": q75}

    def line(r: RunRecord) -> dict[str, Any]:
        pts = list(curves.get(r.id, ()))
        keep = _sample_indices(len(pts), max_points)
        return {
            "run_id": r.id,
            "seed": r.seed,
            "run_class": r.run_class,
            "epochs": [pts[i].epoch for i in keep],
            **{m: [_finite(getattr(pts[i], m)) for i in keep] for m in CURVE_METRICS},
        }

    return {
        "band": band,
        "stable": [line(r) for r in stable[:MAX_DRAWN_SEEDS]],
        "failed": [line(r) for r in failed[:MAX_DRAWN_SEEDS]],
        "n_failed": len(failed),
        "n_unfinished": len(runs) - len(finished),
    }


def run_curves(
    points: Sequence[CurvePoint], step_losses: Sequence[Any] | None, *, max_points: int = 1000
) -> dict[str, Any]:
    """One run's per-epoch metrics and mini-batch losses, sampled for drawing."""
    keep = _sample_indices(len(points), max_points)
    fields = ("loss", "accuracy", "running_loss", "val_loss", "val_accuracy", "learning_rate", "grad_norm")
    epoch = {
        "epoch": [points[i].epoch for i in keep],
        **{f: [_finite(getattr(points[i], f)) for i in keep] for f in fields},
    }
    steps = None
    if step_losses:
        keep_s = _sample_indices(len(step_losses), 2 * max_points)
        steps = {
            "step": [int(step_losses[i][0]) for i in keep_s],
            "loss": [_finite(step_losses[i][1]) for i in keep_s],
            "n": len(step_losses),
        }
    return {"epoch": epoch, "steps": steps}
