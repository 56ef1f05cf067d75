"""Per-configuration statistics over seeds (docs/architecture.md, "Per configuration and per region").

A configuration's seeds are Bernoulli trials "trained stably or not": the
success rate gets a Wilson score interval (Wilson 1927), which stays inside
[0, 1] and is honest at k = 0 or k = n with the 3-10 seeds a sweep affords,
where the normal interval collapses to a point (Brown, Cai & DasGupta 2001).
Final loss and accuracy get the median, IQR and interquartile mean (IQM),
the robust aggregate recommended by Agarwal et al. 2021 for few runs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from service.core.analysis.thresholds import DIVERGED, RUN_CLASSES, SUCCESS_CLASSES

# The per-run fluctuation measures aggregated over seeds (median and IQR of each;
# definitions in analysis.fluctuation). ``unrecovered_spike`` and ``step_log_std``
# stay per run: the first is rare, the second repeats ``step_loss_var`` in log units.
SEED_FLUCTUATION_KEYS: tuple[str, ...] = (
    "fluctuation",
    "jump_p90",
    "running_fluctuation",
    "spikes",
    "largest_spike",
    "step_loss_var",
)

Z95 = 1.959964  # two-sided 95% normal quantile
_KNOWN = frozenset(RUN_CLASSES)


@dataclass(frozen=True)
class RunSummary:
    """What the analysis needs of one seed's run (its curve is classified already)."""

    seed: int
    init_seed: int
    data_seed: int
    run_class: str
    final_loss: float | None = None
    final_accuracy: float | None = None
    epochs_to_target: int | None = None
    l0: float | None = None
    # The run's fluctuation measures (analysis.fluctuation), by name; absent = not measured.
    fluctuation: Mapping[str, float | None] = field(default_factory=dict)
    # How close to its stability threshold it trained (analysis.sharpness); absent = not measured.
    sharpness: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "seed": self.seed,
            "init_seed": self.init_seed,
            "data_seed": self.data_seed,
            "run_class": self.run_class,
            "final_loss": _finite(self.final_loss),
            "final_accuracy": _finite(self.final_accuracy),
            "epochs_to_target": self.epochs_to_target,
            "l0": _finite(self.l0),
            "fluctuation": {k: _finite(v) for k, v in self.fluctuation.items()},
        }
        if self.sharpness:  # only then: runs without it serialise as they always did
            out["sharpness"] = {k: _finite(v) for k, v in self.sharpness.items()}
        return out


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and interquartile mean of the finite values among n."""

    n: int
    median: float | None
    q25: float | None
    q75: float | None
    iqr: float | None
    iqm: float | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n", "median", "q25", "q75", "iqr", "iqm")}


@dataclass(frozen=True)
class ConfigSummary:
    """Seeds of one configuration (or a pool of them), aggregated.

    ``runs`` keeps the per-seed summaries so that cells can be pooled and the
    edge bootstrapped over seeds; ``to_dict`` leaves them out unless asked.
    """

    n: int
    class_counts: dict[str, int]
    successes: int
    success_rate: float | None
    wilson_low: float
    wilson_high: float
    final_loss: Spread
    final_accuracy: Spread
    median_epochs_to_target: float | None
    reached_target: int
    any_diverged: bool
    dominant_class: str | None
    runs: tuple[RunSummary, ...] = ()

    @cached_property
    def fluctuation(self) -> dict[str, Spread]:
        """Median, quartiles and IQR over seeds of each of SEED_FLUCTUATION_KEYS measured.

        Computed when first read: the report and the edge never need it, and
        thousands of configurations x six measures would cost them ~150 ms cold.
        """
        return fluctuation_spreads(self.runs)

    @property
    def wilson(self) -> tuple[float, float]:
        return (self.wilson_low, self.wilson_high)

    def to_dict(self, *, include_runs: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "class_counts": dict(self.class_counts),
            "successes": self.successes,
            "success_rate": self.success_rate,
            "wilson": [self.wilson_low, self.wilson_high],
            "final_loss": self.final_loss.to_dict(),
            "final_accuracy": self.final_accuracy.to_dict(),
            "median_epochs_to_target": self.median_epochs_to_target,
            "reached_target": self.reached_target,
            "any_diverged": self.any_diverged,
            "dominant_class": self.dominant_class,
            "fluctuation": {k: v.to_dict() for k, v in self.fluctuation.items()},
        }
        if include_runs:
            out["runs"] = [r.to_dict() for r in self.runs]
        return out


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n == 0."""
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At k = 0 (k = n) the bound is exactly 0 (1); rounding must not say otherwise.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return (lo, hi)


def spread(values: Iterable[float | None]) -> Spread:
    """Median, quartiles, IQR and IQM of the finite values (None and NaN/Inf skipped).

    IQM is the 25%-trimmed mean as in rliable (Agarwal et al. 2021), i.e.
    scipy.stats.trim_mean(x, 0.25): drop floor(n/4) values from each end.
    """
    # Pure Python: a configuration has a handful of seeds, and numpy's per-call
    # overhead would dominate when thousands of configurations are summarised.
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    xs.sort()
    n = len(xs)
    if n == 0:
        return Spread(0, None, None, None, None, None)
    q25, med, q75 = (quantile(xs, q) for q in (0.25, 0.5, 0.75))
    cut = n // 4
    kept = xs[cut : n - cut]
    return Spread(n, med, q25, q75, q75 - q25, math.fsum(kept) / len(kept))


def quantile(xs: list[float], q: float) -> float:
    """numpy.percentile's default (linear) quantile of sorted ``xs``."""
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize_config(runs: Sequence[RunSummary], *, z: float = Z95) -> ConfigSummary:
    """Aggregate the seeds of one configuration (docs/architecture.md, "Per configuration and per region")."""
    counts = Counter(r.run_class for r in runs)
    if not counts.keys() <= _KNOWN:
        unknown = set(counts) - _KNOWN
        raise ValueError(f"unknown run classes {sorted(unknown)}; known: {', '.join(RUN_CLASSES)}")
    n = len(runs)
    k = sum(counts[c] for c in SUCCESS_CLASSES)
    lo, hi = wilson_interval(k, n, z)
    ett = [float(r.epochs_to_target) for r in runs if r.epochs_to_target is not None]
    return ConfigSummary(
        n=n,
        class_counts={c: counts[c] for c in RUN_CLASSES},
        successes=k,
        success_rate=k / n if n else None,
        wilson_low=lo,
        wilson_high=hi,
        final_loss=spread([r.final_loss for r in runs]),  # lists: ~2x faster to iterate than generators
        final_accuracy=spread([r.final_accuracy for r in runs]),
        median_epochs_to_target=quantile(sorted(ett), 0.5) if ett else None,
        reached_target=len(ett),
        any_diverged=counts[DIVERGED] > 0,
        dominant_class=dominant_class(counts),
        runs=tuple(runs),
    )


def fluctuation_spreads(runs: Sequence[RunSummary]) -> dict[str, Spread]:
    """Median, quartiles and IQR over the seeds of each fluctuation measure some seed has (finite)."""
    # One pass over the runs (not one per measure): /configs reads this for every configuration.
    cols: dict[str, list[float]] = {k: [] for k in SEED_FLUCTUATION_KEYS}
    for r in runs:
        for k, v in r.fluctuation.items():
            col = cols.get(k)
            if col is not None and v is not None and math.isfinite(v):
                col.append(v)
    return {k: spread(vs) for k, vs in cols.items() if vs}


def dominant_class(counts: Counter[str] | dict[str, int]) -> str | None:
    """The most frequent class; ties go to the class tried first (the worse outcome)."""
    best: str | None = None
    for c in RUN_CLASSES:  # failure classes come first, so a tie shows the failure
        if counts.get(c, 0) > 0 and (best is None or counts[c] > counts[best]):
            best = c
    return best


def pool(summaries: Iterable[ConfigSummary]) -> ConfigSummary:
    """One summary over the runs of several configurations (cells of a coarser map)."""
    runs: list[RunSummary] = []
    for s in summaries:
        runs.extend(s.runs)
    return summarize_config(runs)


def by_seed_component(
    runs: Sequence[RunSummary], component: Literal["init", "data"]
) -> dict[int, ConfigSummary]:
    """Runs grouped by their init seed or data-order seed (the "sometimes stays at 50%" question).

    With crossed seeds (every init seed meets every data seed) a spread of
    success rates across init seeds and none across data seeds says the luck
    is in the initial weights, not the data order; and vice versa.
    """
    if component not in ("init", "data"):
        raise ValueError("component must be 'init' or 'data'")
    groups: dict[int, list[RunSummary]] = {}
    for r in runs:
        groups.setdefault(r.init_seed if component == "init" else r.data_seed, []).append(r)
    return {key: summarize_config(rs) for key, rs in sorted(groups.items())}


def seed_component_effects(runs: Sequence[RunSummary]) -> dict[str, dict[str, float | int | None]]:
    """For init and data seeds: how much of the success variance their grouping explains.

    ``eta2`` is the between-group share of the variance of the 0/1 success
    indicator (one-way ANOVA's eta squared); ``range`` is max - min of the
    groups' success rates. Only meaningful when a component takes >1 value
    and its groups have >1 run each (crossed seeds).
    """
    # Plain Python: the diagnosis calls this for every configuration, and numpy's
    # per-call overhead on a handful of seeds dominated a 10,000-run report.
    y = [1.0 if r.run_class in SUCCESS_CLASSES else 0.0 for r in runs]
    mean = sum(y) / len(y) if y else 0.0
    total = math.fsum((v - mean) ** 2 for v in y)
    out: dict[str, dict[str, float | int | None]] = {}
    for comp in ("init", "data"):
        groups: dict[int, list[float]] = {}
        for r, v in zip(runs, y, strict=True):
            groups.setdefault(r.init_seed if comp == "init" else r.data_seed, []).append(v)
        rates = [sum(g) / len(g) for g in groups.values()]
        between = math.fsum(
            len(g) * (rate - mean) ** 2 for g, rate in zip(groups.values(), rates, strict=True)
        )
        informative = len(groups) > 1 and all(len(g) > 1 for g in groups.values())
        out[comp] = {
            "groups": len(groups),
            "eta2": between / total if total > 0 and informative else None,
            "range": max(rates) - min(rates) if rates and informative else None,
        }
    return out


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
