"""How the edge of stability scales with batch size: a least-squares exponent with a bootstrap interval.

SGD's edge is expected to grow linearly with batch size (Goyal et al. 2017),
Adam's and RMSprop's with its square root (Malladi et al. 2022). The fit
pools slices (e.g. beta_1 values) with one intercept each and a common
slope; the interval resamples every configuration's seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from service.core.analysis.edge import BoolArray, EdgeResult, FloatArray, _is_pos, _num
from service.core.analysis.regions import sort_key
from service.core.analysis.seeds import RunSummary
from service.core.analysis.thresholds import DIVERGED, SUCCESS_CLASSES

# Expected exponent of lr_max ~ batch_size ** k per optimizer family.
EXPECTED_EXPONENT: dict[str, float] = {
    "sgd": 1.0,  # linear scaling rule, Goyal et al. 2017
    "adam": 0.5,  # square-root scaling rule, Malladi et al. 2022 (SDEs for adaptive methods)
    "adamw": 0.5,
    "rmsprop": 0.5,
}


_REFERENCE = (
    "lr_max ~ batch_size^k: k ~ 1 for SGD (linear scaling, Goyal et al. 2017), "
    "k ~ 0.5 for Adam/RMSprop (square-root rule, Malladi et al. 2022)"
)


@dataclass(frozen=True)
class ScalingFit:
    """Least-squares exponent of log edge (and log best lr) against log batch size.

    With several slices (e.g. beta_1 values) the fit has one intercept per
    slice and a common slope. The interval is a percentile bootstrap over
    seeds: every configuration's seeds are resampled with replacement and the
    edges and fit recomputed; replicates with fewer than two usable edges
    are dropped (``n_boot_valid``).
    """

    optimizer: str | None
    batch_key: str
    n_points: int
    slope: float | None
    ci: tuple[float, float] | None
    intercept: float | None
    best_lr_slope: float | None
    best_lr_ci: tuple[float, float] | None
    n_boot: int
    n_boot_valid: int
    expected: float | None
    points: tuple[dict[str, Any], ...]
    reference: str = _REFERENCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "batch_key": self.batch_key,
            "n_points": self.n_points,
            "slope": self.slope,
            "ci": None if self.ci is None else list(self.ci),
            "intercept": self.intercept,
            "best_lr_slope": self.best_lr_slope,
            "best_lr_ci": None if self.best_lr_ci is None else list(self.best_lr_ci),
            "n_boot": self.n_boot,
            "n_boot_valid": self.n_boot_valid,
            "expected": self.expected,
            "points": [dict(p) for p in self.points],
            "reference": self.reference,
        }


def scaling_fit(
    edges: Sequence[EdgeResult],
    *,
    batch_key: str = "batch_size",
    n_boot: int = 1000,
    seed: int = 0,
) -> list[ScalingFit]:
    """Scaling exponent per optimizer (one fit per distinct ``optimizer`` in the groups)."""
    by_opt: dict[Any, list[EdgeResult]] = {}
    for e in edges:
        if _is_pos(e.group.get(batch_key)):
            by_opt.setdefault(e.group.get("optimizer"), []).append(e)
    rng = np.random.default_rng(seed)
    return [
        _fit_one(opt, es, batch_key, n_boot, rng)
        for opt, es in sorted(by_opt.items(), key=lambda kv: sort_key(kv[0]))
    ]


def _fit_one(
    opt: Any, edges: list[EdgeResult], batch_key: str, n_boot: int, rng: np.random.Generator
) -> ScalingFit:
    batch = np.array([float(e.group[batch_key]) for e in edges])
    slices = _slice_ids([e.group for e in edges], batch_key)
    edge_y = np.array([e.edge if e.censored is None and e.edge else np.nan for e in edges])
    best_y = np.array([e.best_lr if e.best_lr else np.nan for e in edges])
    x = np.log(batch)
    slope, intercept = _fe_slope(x, np.log(edge_y)[None, :], slices)
    bslope, _ = _fe_slope(x, np.log(best_y)[None, :], slices)
    boot_edge, boot_best = _bootstrap(edges, n_boot, rng)
    s_boot, _ = _fe_slope(x, np.log(boot_edge), slices)
    b_boot, _ = _fe_slope(x, np.log(boot_best), slices)
    ok = s_boot[np.isfinite(s_boot)]
    okb = b_boot[np.isfinite(b_boot)]
    pts = tuple(
        {
            "batch_size": float(b),
            "edge": e.edge,
            "best_lr": e.best_lr,
            "censored": e.censored,
            "group": e.group,
        }
        for b, e in zip(batch, edges, strict=True)
    )
    return ScalingFit(
        optimizer=opt if isinstance(opt, str) else None,
        batch_key=batch_key,
        n_points=int(np.isfinite(edge_y).sum()),
        slope=_num(slope[0]),
        ci=_ci(ok),
        intercept=_num(intercept) if int(slices.max(initial=0)) == 0 else None,
        best_lr_slope=_num(bslope[0]),
        best_lr_ci=_ci(okb),
        n_boot=n_boot,
        n_boot_valid=int(ok.size),
        expected=EXPECTED_EXPONENT.get(opt) if isinstance(opt, str) else None,
        points=pts,
    )


def _bootstrap(
    edges: list[EdgeResult], n_boot: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(n_boot, n_groups) arrays of resampled edges and best lrs (NaN where censored/none)."""
    edge_out = np.full((n_boot, len(edges)), np.nan)
    best_out = np.full((n_boot, len(edges)), np.nan)
    stables = [np.zeros((n_boot, len(e.cells)), dtype=bool) for e in edges]
    meds = [np.full((n_boot, len(e.cells)), np.inf) for e in edges]
    # Cells with the same number of seeds are resampled together: one numpy
    # call per seed count instead of one per cell (a 1,000-cell sweep spent
    # most of its report there).
    by_n: dict[tuple[int, float], list[tuple[int, int]]] = {}
    for g, e in enumerate(edges):
        for i, c in enumerate(e.cells):
            by_n.setdefault((len(c.summary.runs), e.min_success), []).append((g, i))
    for (n, min_success), where in by_n.items():
        runs = [edges[g].cells[i].summary.runs for g, i in where]
        stable, med = _resample_cells(runs, n, min_success, n_boot, rng)
        for k, (g, i) in enumerate(where):
            stables[g][:, i], meds[g][:, i] = stable[:, k], med[:, k]
    for g, e in enumerate(edges):
        lrs = np.array([c.lr for c in e.cells])
        stable, med = stables[g], meds[g]
        edge_out[:, g] = _walk_many(stable, lrs)
        med = np.where(stable, med, np.inf)
        has = np.isfinite(med).any(axis=1)
        best_out[has, g] = lrs[np.argmin(med[has], axis=1)]
    return edge_out, best_out


def _resample_cells(
    cells: Sequence[Sequence[RunSummary]], n: int, min_success: float, n_boot: int, rng: np.random.Generator
) -> tuple[BoolArray, FloatArray]:
    """(n_boot, cells) stability and median loss of cells of ``n`` seeds, each resampled with replacement."""
    m = len(cells)
    if n == 0:
        return np.zeros((n_boot, m), dtype=bool), np.full((n_boot, m), np.inf)
    ok = np.array([[r.run_class in SUCCESS_CLASSES for r in runs] for runs in cells], dtype=np.int32)
    div = np.array([[r.run_class == DIVERGED for r in runs] for runs in cells], dtype=np.int32)
    loss = np.array(
        [[r.final_loss if r.final_loss is not None else np.inf for r in runs] for runs in cells],
        dtype=np.float64,
    )
    loss[~np.isfinite(loss)] = np.inf
    # Flat indices into the (cells, n) arrays: ``take`` is several times faster
    # than broadcast fancy indexing with two index arrays.
    offsets = (np.arange(m, dtype=np.int32) * n)[:, None]
    flat = rng.integers(0, n, size=(n_boot, m, n), dtype=np.int32) + offsets[None]
    # Successes and divergences counted in one pass: code = ok + (n + 1) * diverged.
    counts = (ok + (n + 1) * div).ravel().take(flat).sum(axis=2)
    stable = (counts % (n + 1) / n >= min_success) & (counts // (n + 1) == 0)
    # The median of a resample from the cell's rank positions: partitioning
    # small integer ranks and looking the loss up is ~4x faster than
    # np.median over the resampled floats, and gives the same value.
    order = np.argsort(loss, axis=1, kind="stable")
    sorted_loss = np.take_along_axis(loss, order, axis=1).ravel()
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(n), (m, n)), axis=1)
    pos = (rank.astype(np.int32) + offsets).ravel().take(flat)
    lo_k, hi_k = (n - 1) // 2, n // 2
    # A full sort of each resample's few ranks, not np.partition: same order statistics,
    # and numpy's sort of a short last axis is ~3x faster than its partition (15 ms here).
    pos.sort(axis=2)
    med = 0.5 * (sorted_loss.take(pos[..., lo_k]) + sorted_loss.take(pos[..., hi_k]))
    return stable, med


def _walk_many(stable: BoolArray, lrs: FloatArray) -> FloatArray:
    """Vectorised ``_walk`` over bootstrap rows: the bracketed edge or NaN."""
    n_lr = stable.shape[1]
    has_s = stable.any(axis=1)
    first = np.argmax(stable, axis=1)
    above = (np.arange(n_lr)[None, :] > first[:, None]) & ~stable
    has_u = above.any(axis=1) & has_s
    u = np.argmax(above, axis=1)
    out = np.full(stable.shape[0], np.nan)
    out[has_u] = np.sqrt(lrs[u[has_u] - 1] * lrs[u[has_u]])
    return out


def _fe_slope(x: FloatArray, y: FloatArray, slices: npt.NDArray[np.int64]) -> tuple[FloatArray, float]:
    """Common slope of y on x with one intercept per slice, per row of y (NaN = missing).

    Returns (slopes per row, intercept of row 0 when there is one slice).
    """
    mask = np.isfinite(y)
    yz = np.where(mask, y, 0.0)
    sxy = np.zeros(y.shape[0])
    sxx = np.zeros(y.shape[0])
    for s in np.unique(slices):
        cols = slices == s
        m = mask[:, cols]
        cnt = m.sum(axis=1)
        safe = np.maximum(cnt, 1)
        xs = np.broadcast_to(x[cols], m.shape)
        xbar = (xs * m).sum(axis=1) / safe
        ybar = (yz[:, cols] * m).sum(axis=1) / safe
        dx = (xs - xbar[:, None]) * m
        sxy += (dx * (yz[:, cols] - ybar[:, None])).sum(axis=1)
        sxx += (dx * dx).sum(axis=1)
    valid = sxx > 1e-12
    slope = np.full(y.shape[0], np.nan)
    slope[valid] = sxy[valid] / sxx[valid]
    intercept = math.nan
    if valid[0] and mask[0].any():
        m0 = mask[0]
        intercept = float(yz[0][m0].mean() - slope[0] * x[m0].mean())
    return slope, intercept


def _slice_ids(groups: Sequence[Mapping[str, Any]], batch_key: str) -> npt.NDArray[np.int64]:
    keys: dict[tuple[tuple[str, Any], ...], int] = {}
    ids = [
        keys.setdefault(tuple(sorted((k, v) for k, v in g.items() if k != batch_key)), len(keys))
        for g in groups
    ]
    return np.array(ids, dtype=np.int64)


def _ci(vals: FloatArray) -> tuple[float, float] | None:
    if vals.size < 2:
        return None
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return (float(lo), float(hi))
