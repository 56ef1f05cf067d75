"""The numbers behind a diagnosis: matched comparisons, dimension effects, where failures sit, seed luck.

Comparisons between values of one dimension are always matched: configurations
are grouped by every other parameter (a "slice"), and only slices that tried
both values count, so an unbalanced grid cannot fake an effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from service.core.analysis.diagnosis.sections import DimensionEffect
from service.core.analysis.edge import EdgeResult
from service.core.analysis.regions import ConfigPoint, sort_key
from service.core.analysis.seeds import seed_component_effects, wilson_interval
from service.core.analysis.thresholds import FAILURE_CLASSES, RUN_CLASSES

MIN_EFFECT = 0.2  # smallest matched success-rate difference worth a remedy
PLACES = ("above", "below", "inside")  # relative to a group's edge; "unplaced" when in no group

# {slice (every other parameter): {value of the dimension: [successes, runs]}}
Slices = dict[tuple[tuple[str, Any], ...], dict[Any, list[int]]]


@dataclass(frozen=True)
class Comparison:
    """Value ``better`` of ``dim`` against ``worse`` at the same other settings."""

    dim: str
    better: Any
    worse: Any
    difference: float  # mean over matched slices of the success-rate difference
    matched: int  # slices that tried both values
    better_successes: int
    better_runs: int
    worse_successes: int
    worse_runs: int


@dataclass(frozen=True)
class FailurePlacement:
    """The runs of one failure class by place relative to the edge (zeros left out)."""

    run_class: str
    where: dict[str, int]

    @property
    def runs(self) -> int:
        return sum(self.where.values())

    @property
    def main_place(self) -> str:
        """Where most of them are: above the edge, below the stable band, or inside it (first on ties)."""
        return max(PLACES, key=lambda w: self.where.get(w, 0))


@dataclass(frozen=True)
class SeedLuck:
    """Share of configurations decided by seeds, interval widths, and the init/data split of the luck."""

    n_configs: int
    seeds_per_config: int  # the median
    mixed: int  # configurations with both stable and failed seeds
    share_mixed: float
    mean_wilson_width: float
    components: dict[str, float | None]  # "init"/"data" -> run-weighted eta^2 within mixed configurations


def total_runs(pts: Sequence[ConfigPoint]) -> int:
    return sum(p.summary.n for p in pts)


def stable_lrs(e: EdgeResult) -> list[float]:
    return [c.lr for c in e.cells if c.stable]


def failure_placements(pts: Sequence[ConfigPoint], edges: Sequence[EdgeResult]) -> list[FailurePlacement]:
    """Each failure class with runs: above the edge, below the stable band, or inside; most runs first."""
    where: dict[int, str] = {}
    for e in edges:
        stable = stable_lrs(e)
        for c in e.cells:
            if e.hi is not None and e.censored is None and c.lr >= e.hi:
                pos = "above"
            elif not stable or c.lr < min(stable):
                pos = "below"
            else:
                pos = "inside"
            for cid in c.config_ids:
                where[cid] = pos
    out = []
    for cls in RUN_CLASSES:
        if cls not in FAILURE_CLASSES:
            continue
        counts = {"above": 0, "below": 0, "inside": 0, "unplaced": 0}
        for p in pts:
            k = p.summary.class_counts.get(cls, 0)
            if k:
                counts[where.get(p.config_id, "unplaced")] += k
        if sum(counts.values()):
            out.append(FailurePlacement(cls, {k: v for k, v in counts.items() if v}))
    return sorted(out, key=lambda f: -f.runs)


def matched_slices(pts: Sequence[ConfigPoint], dim: str) -> Slices:
    """Configurations grouped by every parameter except ``dim``: {slice: {value: [k, n]}}."""
    out: Slices = {}
    for p in pts:
        if dim not in p.params:
            continue
        key = tuple(sorted((k, v) for k, v in p.params.items() if k != dim))
        kn = out.setdefault(key, {}).setdefault(p.params[dim], [0, 0])
        kn[0] += p.summary.successes
        kn[1] += p.summary.n
    return out


def dimension_effect(pts: Sequence[ConfigPoint], dim: str, slices: Slices | None = None) -> DimensionEffect:
    """Mean over matched slices of the range of success rates across ``dim``'s values.

    ``slices``: ``matched_slices(pts, dim)`` when the caller has it already.
    """
    ranges = []
    pooled: dict[Any, list[int]] = {}
    for by_val in (matched_slices(pts, dim) if slices is None else slices).values():
        if len(by_val) < 2:
            continue
        rates = [k / n for k, n in by_val.values()]
        ranges.append(max(rates) - min(rates))
        for v, (k, n) in by_val.items():
            acc = pooled.setdefault(v, [0, 0])
            acc[0] += k
            acc[1] += n
    by_value = tuple((v, k / n) for v, (k, n) in sorted(pooled.items(), key=lambda kv: sort_key(kv[0])) if n)
    return DimensionEffect(
        dim=dim,
        effect=sum(ranges) / len(ranges) if ranges else 0.0,
        matched_slices=len(ranges),
        by_value=by_value,
    )


def supported_comparison(
    pts: Sequence[ConfigPoint], dim: str, slices: Slices | None = None
) -> Comparison | None:
    """The largest matched difference between two values of ``dim`` that the data supports.

    Supported: at least ``MIN_EFFECT``, and the pooled Wilson 95% intervals of
    the two values do not overlap. ``slices``: ``matched_slices(pts, dim)`` if at hand.
    """
    best: Comparison | None = None
    values = sorted({p.params[dim] for p in pts if dim in p.params}, key=sort_key)
    if slices is None:
        slices = matched_slices(pts, dim)
    for a in values:
        for b in values:
            if a == b:
                continue
            diffs, ka, na, kb, nb = [], 0, 0, 0, 0
            for by_val in slices.values():
                if a in by_val and b in by_val:
                    (k1, n1), (k2, n2) = by_val[a], by_val[b]
                    diffs.append(k1 / n1 - k2 / n2)
                    ka, na, kb, nb = ka + k1, na + n1, kb + k2, nb + n2
            if not diffs:
                continue
            d = sum(diffs) / len(diffs)
            lo_a, _ = wilson_interval(ka, na)
            _, hi_b = wilson_interval(kb, nb)
            if d >= MIN_EFFECT and lo_a > hi_b and (best is None or d > best.difference):
                best = Comparison(dim, a, b, d, len(diffs), ka, na, kb, nb)
    return best


def seed_luck(pts: Sequence[ConfigPoint]) -> SeedLuck | None:
    """None without finished runs."""
    n = len(pts)
    if n == 0:
        return None
    mixed = [p for p in pts if 0 < p.summary.successes < p.summary.n]
    widths = [p.summary.wilson_high - p.summary.wilson_low for p in pts]
    return SeedLuck(
        n_configs=n,
        seeds_per_config=sorted(p.summary.n for p in pts)[n // 2],
        mixed=len(mixed),
        share_mixed=len(mixed) / n,
        mean_wilson_width=sum(widths) / n,
        components=seed_components(mixed),
    )


def seed_components(mixed: Sequence[ConfigPoint]) -> dict[str, float | None]:
    """Run-weighted mean over configurations of the eta^2 of init and data seeds.

    Computed within each configuration (pooling configurations would mix their
    different success rates into the seeds' share). Needs crossed seeds.
    """
    effects = [(seed_component_effects(p.summary.runs), p.summary.n) for p in mixed]  # both at once
    out: dict[str, float | None] = {}
    for comp in ("init", "data"):
        num = den = 0.0
        for by_comp, n in effects:
            eta2 = by_comp[comp]["eta2"]
            if eta2 is not None:
                num += float(eta2) * n
                den += n
        out[comp] = num / den if den else None
    return out


def interval_width(n: int) -> float:
    """Width of the Wilson 95% interval of a 50% success rate over ``n`` seeds."""
    lo, hi = wilson_interval(n // 2, n)
    return hi - lo
