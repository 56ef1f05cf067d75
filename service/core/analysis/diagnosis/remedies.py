"""Remedies the data supports, each with the evidence that supports it.

A remedy is offered only on evidence from the sweep itself: runs that failed
above a bracketed edge, groups with no stable learning rate, a matched
comparison that passes ``evidence.supported_comparison``, a batch-size
exponent whose 95% interval is above zero, many configurations decided by
seed luck, or many runs still improving when training stopped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from service.core.analysis.diagnosis.evidence import Comparison, Slices, interval_width, supported_comparison
from service.core.analysis.diagnosis.sections import Failure, Remedy, SeedDependence
from service.core.analysis.diagnosis.wording import fmt, group_text, pct
from service.core.analysis.edge import EdgeResult
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.thresholds import SLOW, STUCK_AT_CHANCE

MIXED_SHARE = 0.2  # share of configurations with mixed seed outcomes that calls for more seeds
SLOW_SHARE = 0.25  # share of runs still improving at the end that calls for more epochs


def remedies(
    pts: Sequence[ConfigPoint],
    dims: Sequence[str],
    edges: Sequence[EdgeResult],
    fit: Sequence[ScalingFit],
    failures: Sequence[Failure],
    seeds: SeedDependence,
    lr_key: str,
    slices: Mapping[str, Slices] | None = None,
) -> list[Remedy]:
    """``slices``: each dimension's ``matched_slices`` when the caller has them already."""
    out: list[Remedy] = []
    bracketed = [e for e in edges if e.censored is None and e.edge is not None]
    above = sum(int(f.where.get("above", 0)) for f in failures if f.run_class != STUCK_AT_CHANCE)
    if bracketed and above:
        lim = "; ".join(f"{group_text(e.group)}: <= {fmt(e.lo)}" for e in bracketed[:4])
        out.append(
            Remedy(
                "Lower the learning rate below the edge",
                f"{above} runs diverged or rose after their minimum above the edge ({lim}).",
            )
        )
    if any(e.censored == "below" for e in edges):
        out.append(
            Remedy(
                "Try smaller learning rates",
                "for some groups no learning rate in the grid was stable: "
                + "; ".join(group_text(e.group) for e in edges if e.censored == "below")[:300],
            )
        )
    for dim in dims:
        if dim == lr_key:
            continue
        cmp = supported_comparison(pts, dim, (slices or {}).get(dim))
        if cmp is not None:
            out.append(Remedy(_remedy_name(dim, cmp.better, cmp.worse), _evidence(cmp) + "."))
    for f in fit:
        if f.slope is not None and f.ci is not None and f.ci[0] > 0 and "batch_size" in dims:
            out.append(
                Remedy(
                    "A larger batch tolerates a larger learning rate",
                    f"the edge grows as batch_size^{f.slope:.2f} (95% CI {f.ci[0]:.2f} to {f.ci[1]:.2f})"
                    + (f" for {f.optimizer}" if f.optimizer else "")
                    + "; scale the lr with the batch, do not keep it fixed.",
                )
            )
    share = seeds.share_mixed
    if isinstance(share, float) and share >= MIXED_SHARE and seeds.seeds_per_config is not None:
        n = seeds.seeds_per_config
        out.append(
            Remedy(
                "Run more seeds",
                f"{pct(share)} of configurations are decided by seed luck; at a 50% success rate "
                f"{n} seeds give a 95% interval {interval_width(n):.2f} wide, "
                f"{3 * n} seeds {interval_width(3 * n):.2f}.",
            )
        )
    slow = sum(p.summary.class_counts.get(SLOW, 0) for p in pts)
    total = sum(p.summary.n for p in pts)
    if total and slow / total >= SLOW_SHARE:
        out.append(
            Remedy(
                "Train for more epochs (or raise the learning rate inside the stable band)",
                f"{slow} of {total} runs were still improving when training stopped.",
            )
        )
    return out


def _evidence(c: Comparison) -> str:
    ka, na, kb, nb = c.better_successes, c.better_runs, c.worse_successes, c.worse_runs
    return (
        f"at the same other settings ({c.matched} matched), {c.dim}={fmt(c.better)} trained stably in "
        f"{ka}/{na} runs ({pct(ka / na)}) versus {kb}/{nb} ({pct(kb / nb)}) for {c.dim}={fmt(c.worse)}"
    )


def _remedy_name(dim: str, best: Any, worst: Any) -> str:
    if dim == "clipnorm" and _num(worst) == 0 and _num(best) > 0:
        return f"Clip gradients (clipnorm={fmt(best)})"
    if dim == "clipnorm":
        return f"Use clipnorm={fmt(best)} rather than {fmt(worst)}"
    if dim == "schedule" and worst == "constant":
        return f"Decay the learning rate ({best} schedule rather than constant)"
    if dim == "batch_size" and _num(best) > _num(worst):
        return f"Use a larger batch ({fmt(best)} rather than {fmt(worst)})"
    return f"Use {dim}={fmt(best)} rather than {fmt(worst)}"


def _num(v: Any) -> float:
    """A number for comparing parameter values; NaN (which compares false) for anything else."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
