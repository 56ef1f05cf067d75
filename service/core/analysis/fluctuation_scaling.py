"""How fluctuation scales with batch size and learning rate (docs/architecture.md, "Fluctuation").

At every fixed value of the other swept dimensions (a *group*: one learning
rate, optimizer, beta slice, ...), the median over seeds of a run's
fluctuation index is fitted on log-log axes against batch size (and, apart,
against learning rate): ln F = a + k ln x by least squares. Mini-batch
gradient noise has a standard deviation proportional to b^-1/2, so for
SGD-like updates at a fixed learning rate the loss's epoch-to-epoch wobble is
expected to scale with an exponent near -0.5 in batch size (the SDE view of
SGD: noise temperature lr / b, Smith & Le 2018; Malladi et al. 2022 for
adaptive methods). Growth with the learning rate at fixed batch size points
instead at the optimiser approaching its stability edge.

Only seeds that trained stably enter (a diverged run's smooth climb has no
wobble to measure). The interval is a percentile bootstrap over seeds: each
batch size's seeds are resampled with replacement, medians and the slope are
recomputed. ``change`` is the measured median fluctuation at the largest value
over that at the smallest: what moving across the swept range did.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from service.core.analysis.regions import ConfigPoint, sort_key
from service.core.analysis.seeds import quantile
from service.core.analysis.thresholds import SUCCESS_CLASSES

FloatArray = npt.NDArray[np.float64]

# Expected exponent of fluctuation ~ x^k per dimension (module docstring); None: no prediction.
EXPECTED_FLUCTUATION_EXPONENT: dict[str, float | None] = {"batch_size": -0.5, "learning_rate": None}
REFERENCE = (
    "fluctuation ~ batch_size^k at fixed lr: mini-batch gradient noise predicts k ~ -0.5 "
    "(noise std ~ b^-1/2; Smith & Le 2018, Malladi et al. 2022)"
)


@dataclass(frozen=True)
class FluctuationPoint:
    """One value of the fitted dimension: the median and quartiles of its stable seeds."""

    x: float
    n: int
    median: float
    q25: float
    q75: float
    jump: float | None  # median jump factor (jump_p90) of the same seeds

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "n": self.n,
            "median": self.median,
            "q25": self.q25,
            "q75": self.q75,
            "jump": self.jump,
        }


@dataclass(frozen=True)
class FluctuationFit:
    """ln fluctuation against ln ``along`` in one group, with its bootstrap interval over seeds."""

    along: str
    group: dict[str, Any]
    points: tuple[FluctuationPoint, ...]
    slope: float | None
    ci: tuple[float, float] | None
    n_boot: int
    n_boot_valid: int
    expected: float | None
    change: float | None  # median at the largest x / median at the smallest x

    def to_dict(self) -> dict[str, Any]:
        return {
            "along": self.along,
            "group": dict(self.group),
            "n_points": len(self.points),
            "slope": self.slope,
            "ci": None if self.ci is None else list(self.ci),
            "n_boot": self.n_boot,
            "n_boot_valid": self.n_boot_valid,
            "expected": self.expected,
            "change": self.change,
            "points": [p.to_dict() for p in self.points],
            "reference": REFERENCE if self.along == "batch_size" else None,
        }


@dataclass(frozen=True)
class FluctuationEffect:
    """How much one dimension moves fluctuation: the median over its groups of ``change`` and slope."""

    dim: str
    groups: int
    change: float  # median over groups of (fluctuation at largest value / at smallest)
    slope: float | None  # median over groups of the fitted exponent
    lo: float
    hi: float  # the smallest and largest value swept

    @property
    def fold(self) -> float:
        """The size of the move whatever its direction (>= 1)."""
        return max(self.change, 1.0 / self.change) if self.change > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "groups": self.groups,
            "change": self.change,
            "fold": self.fold,
            "slope": self.slope,
            "range": [self.lo, self.hi],
        }


class StableSeeds(NamedTuple):
    """What one configuration's stable seeds (SUCCESS_CLASSES) contribute to the fluctuation passes."""

    values: list[tuple[float, Any]]  # (metric, jump_p90) where the metric is finite and > 0
    jumps: list[float]  # the finite jump factors
    measured: bool  # whether any stable seed carries a fluctuation index
    running_ratios: list[float]  # running_fluctuation / fluctuation where both are there (fluctuation > 0)


def stable_seeds(points: Sequence[ConfigPoint], metric: str = "fluctuation") -> list[StableSeeds]:
    """Per point, in order, its stable seeds' fluctuation values (one pass over the runs)."""
    out = []
    for p in points:
        values: list[tuple[float, Any]] = []
        jumps: list[float] = []
        ratios: list[float] = []
        measured = False
        for r in p.summary.runs:
            fl = r.fluctuation
            if not fl or r.run_class not in SUCCESS_CLASSES:
                continue
            v, j, f = fl.get(metric), fl.get("jump_p90"), fl.get("fluctuation")
            if v is not None and math.isfinite(v) and v > 0:
                values.append((float(v), j))
            if j is not None and math.isfinite(j):
                jumps.append(float(j))
            if f is not None:
                measured = True
                rf = fl.get("running_fluctuation")
                if rf is not None and f > 0:
                    ratios.append(rf / f)
        out.append(StableSeeds(values, jumps, measured, ratios))
    return out


def fluctuation_fits(
    points: Sequence[ConfigPoint],
    along: str,
    *,
    n_boot: int = 200,
    seed: int = 0,
    metric: str = "fluctuation",
    stable: Sequence[StableSeeds] | None = None,
) -> list[FluctuationFit]:
    """One fit per group having >= 2 values of ``along`` with a measured fluctuation.

    ``stable``: ``stable_seeds(points, metric)`` when the caller has it already.
    """
    if stable is None:
        stable = stable_seeds(points, metric)
    groups: dict[
        tuple[tuple[str, str], ...], tuple[dict[str, Any], dict[float, list[tuple[float, Any]]]]
    ] = {}
    for p, seeds in zip(points, stable, strict=True):
        raw: Any = p.params.get(along)
        if not _positive(raw):
            continue
        x = float(raw)
        rest = {k: v for k, v in p.params.items() if k != along}
        key = tuple(sorted((k, repr(v)) for k, v in rest.items()))
        _, by_x = groups.setdefault(key, (rest, {}))
        if seeds.values:
            by_x.setdefault(x, []).extend(seeds.values)
    fits: list[FluctuationFit] = []
    samples: list[list[FloatArray]] = []
    for _, (rest, by_x) in sorted(groups.items(), key=lambda kv: [sort_key(v) for v in kv[1][0].values()]):
        if len(by_x) >= 2:
            fit, logs = _fit(along, rest, by_x, with_logs=n_boot > 0)
            fits.append(fit)
            samples.append(logs)
    if n_boot > 0:
        fits = _with_intervals(fits, samples, np.random.default_rng(seed), n_boot)
    return fits


def _with_intervals(
    fits: list[FluctuationFit], samples: list[list[FloatArray]], rng: np.random.Generator, n_boot: int
) -> list[FluctuationFit]:
    """Each fit with its percentile bootstrap interval over seeds (module docstring).

    All fits with the same number of x values are resampled together, in one
    draw (``_boot_medians``): a report fits hundreds of groups, and numpy's
    per-call overhead would otherwise dominate.
    """
    by_nx: dict[int, list[int]] = {}
    for i, logs in enumerate(samples):
        by_nx.setdefault(len(logs), []).append(i)
    out = list(fits)
    for nx, members in by_nx.items():
        boot = _boot_medians([samples[i] for i in members], nx, rng, n_boot)  # (groups, n_x, n_boot)
        lx = np.log(np.array([[p.x for p in fits[i].points] for i in members], dtype=np.float64))
        lxc = lx - lx.mean(axis=1, keepdims=True)  # (groups, n_x)
        slopes = (lxc[:, :, None] * (boot - boot.mean(axis=1, keepdims=True))).sum(axis=1) / (
            (lxc * lxc).sum(axis=1)[:, None]
        )  # (groups, n_boot)
        # ln of positive finite values: every resampled slope is finite; one percentile call for all.
        lo, hi = np.percentile(slopes, [2.5, 97.5], axis=1)
        for row, i in enumerate(members):
            ci = (float(lo[row]), float(hi[row]))
            out[i] = dataclasses.replace(fits[i], ci=ci, n_boot=n_boot, n_boot_valid=n_boot)
    return out


def _boot_medians(
    groups: list[list[FloatArray]], nx: int, rng: np.random.Generator, n_boot: int
) -> FloatArray:
    """(groups, n_x, n_boot) medians of each x's values resampled with replacement.

    Each x's values come sorted (``_fit``), so a drawn index is the value's
    rank: the resampled indices are sorted instead of the values they point
    at (small integers, the same order statistics: ties hold equal values),
    and the median is looked up at the order statistics (m - 1) // 2 and
    m // 2 (the edge bootstrap's trick, ``edge_scaling._resample_cells``).
    Values are padded to the largest count m_max; a resample of m values
    draws m indices below m, and its unused slots get the index m_max, which
    sorts last and is never read.
    """
    m = np.array([[a.size for a in g] for g in groups], dtype=np.int64)  # (groups, n_x)
    m_max = int(m.max())
    padded = np.zeros((len(groups), nx, m_max + 1))
    for gi, g in enumerate(groups):
        for xi, a in enumerate(g):
            padded[gi, xi, : a.size] = a
    # The same draws as ever (one uniform per slot, scaled by m): the intervals do not move.
    small = np.int16 if m_max < np.iinfo(np.int16).max else np.int64  # numpy sorts int16 fastest
    idx = (rng.random((len(groups), nx, n_boot, m_max)) * m[:, :, None, None]).astype(small)
    idx[np.broadcast_to(np.arange(m_max) >= m[:, :, None, None], idx.shape)] = m_max
    idx.sort(axis=3)
    flat = padded.reshape(len(groups) * nx, m_max + 1)
    offsets = (np.arange(len(groups) * nx, dtype=np.int64) * (m_max + 1)).reshape(len(groups), nx, 1)
    lo = np.take_along_axis(idx, ((m - 1) // 2)[:, :, None, None], axis=3)[..., 0].astype(np.int64) + offsets
    hi = np.take_along_axis(idx, (m // 2)[:, :, None, None], axis=3)[..., 0].astype(np.int64) + offsets
    out: FloatArray = (flat.take(lo) + flat.take(hi)) / 2
    return out


def fluctuation_effects(fits: Sequence[FluctuationFit]) -> list[FluctuationEffect]:
    """Per fitted dimension, the median change across the swept range; the largest move first."""
    by_dim: dict[str, list[FluctuationFit]] = {}
    for f in fits:
        if f.change is not None:
            by_dim.setdefault(f.along, []).append(f)
    out = []
    for dim, fs in by_dim.items():
        changes = sorted(float(f.change) for f in fs if f.change is not None)
        slopes = sorted(f.slope for f in fs if f.slope is not None)
        out.append(
            FluctuationEffect(
                dim=dim,
                groups=len(fs),
                change=quantile(changes, 0.5),
                slope=quantile(slopes, 0.5) if slopes else None,
                lo=min(p.x for f in fs for p in f.points),
                hi=max(p.x for f in fs for p in f.points),
            )
        )
    return sorted(out, key=lambda e: -abs(math.log(e.change)) if e.change > 0 else -math.inf)


def jump_by_value(
    points: Sequence[ConfigPoint], dim: str, stable: Sequence[StableSeeds] | None = None
) -> dict[Any, float]:
    """Median jump factor (jump_p90) of the stable seeds at each value of ``dim``.

    ``stable``: ``stable_seeds(points)`` when the caller has it already.
    """
    if stable is None:
        stable = stable_seeds(points)
    vals: dict[Any, list[float]] = {}
    for p, seeds in zip(points, stable, strict=True):
        if seeds.jumps and dim in p.params:
            vals.setdefault(p.params[dim], []).extend(seeds.jumps)
    return {k: quantile(sorted(v), 0.5) for k, v in sorted(vals.items(), key=lambda kv: sort_key(kv[0]))}


@dataclass(frozen=True)
class FluctuationSummary:
    """A sweep's fluctuation: jump factors per batch size and lr, the fits, which dimension moves it most."""

    measured: bool  # whether any stable run carries a fluctuation index
    jump_by_batch: Mapping[Any, float]
    jump_by_lr: Mapping[Any, float]
    fits: tuple[FluctuationFit, ...]
    effects: tuple[FluctuationEffect, ...]
    running_ratio: float | None  # median over stable runs of running_fluctuation / fluctuation
    config_ids: tuple[int, ...]  # the configurations with a measured fluctuation

    def to_dict(self) -> dict[str, Any]:
        return {
            "measured": self.measured,
            "jump_by_batch_size": [[k, v] for k, v in self.jump_by_batch.items()],
            "jump_by_learning_rate": [[k, v] for k, v in self.jump_by_lr.items()],
            "fits": [f.to_dict() for f in self.fits],
            "effects": [e.to_dict() for e in self.effects],
            "running_ratio": self.running_ratio,
        }


def summarize_fluctuation(
    points: Sequence[ConfigPoint], *, lr_key: str = "learning_rate", n_boot: int = 200
) -> FluctuationSummary:
    """Everything the diagnosis says about fluctuation, from the points' stable seeds."""
    # Each point's stable seeds read once, shared by the four passes below (their filtering
    # was a fifth of a cold report on a 10,000-run sweep when each pass repeated it).
    stable = stable_seeds(points)
    ratios, ids = [], set()
    for p, seeds in zip(points, stable, strict=True):
        if seeds.measured:
            ids.add(p.config_id)
            ratios.extend(seeds.running_ratios)
    # The interval is for the batch-size exponent, the one with a prediction (-0.5); the
    # learning-rate fits only say which way and how far fluctuation moves (and stay cheap).
    fits = fluctuation_fits(points, "batch_size", n_boot=n_boot, stable=stable) + fluctuation_fits(
        points, lr_key, n_boot=0, stable=stable
    )
    return FluctuationSummary(
        measured=bool(ids),
        jump_by_batch=jump_by_value(points, "batch_size", stable),
        jump_by_lr=jump_by_value(points, lr_key, stable),
        fits=tuple(fits),
        effects=tuple(fluctuation_effects(fits)),
        running_ratio=quantile(sorted(ratios), 0.5) if ratios else None,
        config_ids=tuple(sorted(ids)),
    )


def _fit(
    along: str, rest: Mapping[str, Any], by_x: Mapping[float, list[tuple[float, Any]]], *, with_logs: bool
) -> tuple[FluctuationFit, list[FloatArray]]:
    """The least-squares fit (no interval yet), and each x's ln values for the bootstrap.

    ``with_logs``: only a fit that gets an interval needs them (hundreds of small arrays).
    """
    xs = sorted(by_x)
    pts = []
    logs: list[FloatArray] = []
    for x in xs:
        vals = sorted(v for v, _ in by_x[x])
        jumps = sorted(float(j) for _, j in by_x[x] if j is not None and math.isfinite(j))
        pts.append(
            FluctuationPoint(
                x=x,
                n=len(vals),
                median=quantile(vals, 0.5),
                q25=quantile(vals, 0.25),
                q75=quantile(vals, 0.75),
                jump=quantile(jumps, 0.5) if jumps else None,
            )
        )
        if with_logs:
            logs.append(np.log(np.array(vals, dtype=np.float64)))
    lx = np.log(np.array(xs, dtype=np.float64))
    slope = _slope(lx, np.log(np.array([p.median for p in pts], dtype=np.float64)))
    fit = FluctuationFit(
        along=along,
        group=dict(rest),
        points=tuple(pts),
        slope=slope,
        ci=None,
        n_boot=0,
        n_boot_valid=0,
        expected=EXPECTED_FLUCTUATION_EXPONENT.get(along),
        change=pts[-1].median / pts[0].median,
    )
    return fit, logs


def _slope(lx: FloatArray, ly: FloatArray) -> float:
    lxc = lx - lx.mean()
    return float((lxc * (ly - ly.mean())).sum() / (lxc * lxc).sum())


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
