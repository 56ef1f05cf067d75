"""Plain-language diagnosis of a sweep (DESIGN §5, last bullet).

Every statement is computed from the sweep's own numbers, and every remedy is
offered only when the data supports it: a dimension's value is recommended
when, at otherwise identical settings, it trained stably at least
``MIN_EFFECT`` (20 points) more often than the alternative *and* the pooled
Wilson 95% intervals of the two do not overlap. Comparisons are always
matched (same values of every other swept dimension), so an unbalanced grid
cannot fake an effect.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from service.core.analysis.edge import EdgeResult, ScalingFit, Sensitivity
from service.core.analysis.regions import ConfigPoint, sort_key
from service.core.analysis.seeds import seed_component_effects, wilson_interval
from service.core.analysis.thresholds import (
    DIVERGED,
    FAILURE_CLASSES,
    RISES_AFTER_MIN,
    RUN_CLASSES,
    SLOW,
    STUCK_AT_CHANCE,
)

MIN_EFFECT = 0.2  # smallest matched success-rate difference worth a remedy
MIXED_SHARE = 0.2  # share of configurations with mixed seed outcomes that calls for more seeds
_LABEL = {
    DIVERGED: "diverge",
    RISES_AFTER_MIN: "rise after their minimum",
    STUCK_AT_CHANCE: "stay stuck at chance",
    "noisy": "train noisily",
    SLOW: "are still improving when training stops (slow)",
    "converged": "converge",
}


@dataclass(frozen=True)
class Remedy:
    remedy: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"remedy": self.remedy, "evidence": self.evidence}


@dataclass(frozen=True)
class Report:
    headline: str
    stable_region: tuple[dict[str, Any], ...]
    failures: tuple[dict[str, Any], ...]
    dimension_effects: tuple[dict[str, Any], ...]
    seed_dependence: dict[str, Any]
    scaling: tuple[dict[str, Any], ...]
    sensitivity: tuple[dict[str, Any], ...]
    remedies: tuple[Remedy, ...]
    num_classes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "headline": self.headline,
            "stable_region": [dict(s) for s in self.stable_region],
            "failures": [dict(f) for f in self.failures],
            "dimension_effects": [dict(d) for d in self.dimension_effects],
            "seed_dependence": dict(self.seed_dependence),
            "scaling": [dict(s) for s in self.scaling],
            "sensitivity": [dict(s) for s in self.sensitivity],
            "remedies": [r.to_dict() for r in self.remedies],
            "num_classes": self.num_classes,
        }


def diagnose(
    *,
    points: Sequence[ConfigPoint],
    params_swept: Mapping[str, Sequence[Any]],
    edges: Sequence[EdgeResult],
    fit: Sequence[ScalingFit],
    sensitivity: Sequence[Sensitivity],
    num_classes: int,
    lr_key: str = "learning_rate",
) -> Report:
    """The sweep's diagnosis: stable region, failures, main dimension, seed luck, remedies."""
    pts = [p for p in points if p.summary.n > 0]
    dims = [d for d, vals in params_swept.items() if len(vals) > 1]
    region = tuple(_stable_region(e, lr_key) for e in edges)
    failures = _failures(pts, edges, lr_key)
    effects = tuple(sorted((_effect(pts, d) for d in dims), key=lambda e: -e["effect"]))
    seeds = _seed_dependence(pts)
    remedies = _remedies(pts, dims, edges, fit, failures, seeds, lr_key)
    report = Report(
        headline="",
        stable_region=region,
        failures=failures,
        dimension_effects=effects,
        seed_dependence=seeds,
        scaling=tuple(f.to_dict() for f in fit),
        sensitivity=tuple(s.to_dict() for s in sensitivity),
        remedies=tuple(remedies),
        num_classes=num_classes,
    )
    return dataclasses.replace(report, headline=_headline(pts, report, lr_key))


def report_to_markdown(report: Report, *, title: str = "Diagnosis") -> str:
    """The report as Markdown (headline, then one section per question)."""
    out = [f"# {title}", "", f"**{report.headline}**", "", "## Stable region"]
    if not report.stable_region:
        out.append("- No learning-rate groups to show.")
    for s in report.stable_region:
        out.append(f"- {_group_text(s['group'])}: {s['text']}")
    out += ["", "## What fails, and where"]
    if not report.failures:
        out.append("- No run failed.")
    for f in report.failures:
        out.append(f"- {f['text']}")
    out += ["", "## Which dimension matters most"]
    if not report.dimension_effects:
        out.append("- Only one dimension value was tried; nothing to compare.")
    for d in report.dimension_effects:
        rates = ", ".join(f"{_fmt(v)}: {_pct(r)}" for v, r in d["by_value"])
        out.append(f"- `{d['dim']}`: success rate moves by {_pct(d['effect'])} on average ({rates})")
    sd = report.seed_dependence
    out += ["", "## Seed dependence", f"- {sd['text']}"]
    if report.scaling:
        out += ["", "## Edge versus batch size"]
        for f in report.scaling:
            out.append(f"- {_scaling_text(f)}")
    out += ["", "## Remedies the data supports"]
    if not report.remedies:
        out.append("- None beyond the stable region above: no tried change clearly helped.")
    for r in report.remedies:
        out.append(f"- **{r.remedy}** — {r.evidence}")
    return "\n".join(out) + "\n"


# ---- sections ------------------------------------------------------------------------------


def _stable_region(e: EdgeResult, lr_key: str) -> dict[str, Any]:
    stable = [c.lr for c in e.cells if c.stable]
    if e.censored == "below":
        text = f"no {lr_key} tried was stable (the edge is below {_fmt(e.hi)})"
    elif e.censored == "above":
        text = f"stable from {_fmt(min(stable))} up to the largest {lr_key} tried, {_fmt(e.lo)}"
    else:
        text = (
            f"stable from {_fmt(min(stable))} to {_fmt(e.lo)}; edge ~ {_fmt(e.edge)} "
            f"(between {_fmt(e.lo)} and {_fmt(e.hi)})"
        )
        if e.stable_again_above:
            text += "; some larger values were stable again (seed luck or a narrow window)"
    return {
        "group": dict(e.group),
        "stable_lrs": [min(stable), max(stable)] if stable else None,
        "edge": e.edge,
        "bracket": [e.lo, e.hi],
        "censored": e.censored,
        "best_lr": e.best_lr,
        "text": text,
    }


def _failures(
    pts: Sequence[ConfigPoint], edges: Sequence[EdgeResult], lr_key: str
) -> tuple[dict[str, Any], ...]:
    """Each failure class: how many runs, and whether above the edge, below the stable band, or inside."""
    where: dict[int, str] = {}
    for e in edges:
        stable = [c.lr for c in e.cells if c.stable]
        for c in e.cells:
            if e.hi is not None and e.censored is None and c.lr >= e.hi:
                pos = "above"
            elif not stable or c.lr < min(stable):
                pos = "below"
            else:
                pos = "inside"
            for cid in c.config_ids:
                where[cid] = pos
    total = sum(p.summary.n for p in pts)
    out = []
    for cls in RUN_CLASSES:
        if cls not in FAILURE_CLASSES:
            continue
        counts = {"above": 0, "below": 0, "inside": 0, "unplaced": 0}
        for p in pts:
            k = p.summary.class_counts.get(cls, 0)
            if k:
                counts[where.get(p.config_id, "unplaced")] += k
        n = sum(counts.values())
        if n == 0:
            continue
        main = max(("above", "below", "inside"), key=lambda w: counts[w])
        place = {
            "above": f"above the edge (larger {lr_key})",
            "below": f"below the stable band (smaller {lr_key})",
            "inside": "inside the stable band, on unlucky seeds",
        }[main]
        out.append(
            {
                "run_class": cls,
                "runs": n,
                "share": n / total if total else 0.0,
                "where": {k: v for k, v in counts.items() if v},
                "text": f"{n} of {total} runs {_LABEL[cls]} ({_pct(n / total)}), mostly {place}.",
            }
        )
    return tuple(sorted(out, key=lambda f: -int(f["runs"])))


def _slices(pts: Sequence[ConfigPoint], dim: str) -> dict[tuple[tuple[str, Any], ...], dict[Any, list[int]]]:
    """Configurations grouped by every parameter except ``dim``: {slice: {value: [k, n]}}."""
    out: dict[tuple[tuple[str, Any], ...], dict[Any, list[int]]] = {}
    for p in pts:
        if dim not in p.params:
            continue
        key = tuple(sorted((k, v) for k, v in p.params.items() if k != dim))
        kn = out.setdefault(key, {}).setdefault(p.params[dim], [0, 0])
        kn[0] += p.summary.successes
        kn[1] += p.summary.n
    return out


def _effect(pts: Sequence[ConfigPoint], dim: str) -> dict[str, Any]:
    """Mean over matched slices of the range of success rates across ``dim``'s values."""
    ranges = []
    pooled: dict[Any, list[int]] = {}
    for by_val in _slices(pts, dim).values():
        if len(by_val) < 2:
            continue
        rates = [k / n for k, n in by_val.values()]
        ranges.append(max(rates) - min(rates))
        for v, (k, n) in by_val.items():
            acc = pooled.setdefault(v, [0, 0])
            acc[0] += k
            acc[1] += n
    by_value = [(v, k / n) for v, (k, n) in sorted(pooled.items(), key=lambda kv: sort_key(kv[0])) if n]
    return {
        "dim": dim,
        "effect": sum(ranges) / len(ranges) if ranges else 0.0,
        "matched_slices": len(ranges),
        "by_value": by_value,
    }


def _compare(pts: Sequence[ConfigPoint], dim: str) -> tuple[Any, Any, float, str] | None:
    """(best value, worst value, matched difference, evidence) when the difference is supported."""
    best: tuple[Any, Any, float, str] | None = None
    values = sorted({p.params[dim] for p in pts if dim in p.params}, key=sort_key)
    slices = _slices(pts, dim)
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
            if d >= MIN_EFFECT and lo_a > hi_b and (best is None or d > best[2]):
                ev = (
                    f"at the same other settings ({len(diffs)} matched), {dim}={_fmt(a)} trained stably in "
                    f"{ka}/{na} runs ({_pct(ka / na)}) versus {kb}/{nb} ({_pct(kb / nb)}) for {dim}={_fmt(b)}"
                )
                best = (a, b, d, ev)
    return best


def _seed_dependence(pts: Sequence[ConfigPoint]) -> dict[str, Any]:
    n = len(pts)
    if n == 0:
        return {
            "n_configs": 0,
            "share_mixed": None,
            "mean_wilson_width": None,
            "text": "No finished runs yet.",
        }
    mixed = [p for p in pts if 0 < p.summary.successes < p.summary.n]
    widths = [p.summary.wilson_high - p.summary.wilson_low for p in pts]
    seeds = sorted(p.summary.n for p in pts)[n // 2]
    share = len(mixed) / n
    comps = _seed_components(mixed)
    text = (
        f"{len(mixed)} of {n} configurations ({_pct(share)}) have both stable and failed seeds; "
        f"with {seeds} seeds per configuration the 95% interval of a success rate is "
        f"{sum(widths) / n:.2f} wide on average."
    )
    init, data = comps.get("init"), comps.get("data")
    if init is not None and data is not None:
        which = "initial weights" if init > data else "data order"
        text += (
            f" Within those configurations the init seed explains {_pct(init)} of the outcome variance "
            f"and the data-order seed {_pct(data)}: the luck is mostly in the {which}."
        )
    return {
        "n_configs": n,
        "seeds_per_config": seeds,
        "share_mixed": share,
        "mean_wilson_width": sum(widths) / n,
        "seed_components": comps,
        "text": text,
    }


def _seed_components(mixed: Sequence[ConfigPoint]) -> dict[str, float | None]:
    """Run-weighted mean over configurations of the eta^2 of init and data seeds.

    Computed within each configuration (pooling configurations would mix their
    different success rates into the seeds' share). Needs crossed seeds.
    """
    out: dict[str, float | None] = {}
    for comp in ("init", "data"):
        num = den = 0.0
        for p in mixed:
            eta2 = seed_component_effects(p.summary.runs)[comp]["eta2"]
            if eta2 is not None:
                num += float(eta2) * p.summary.n
                den += p.summary.n
        out[comp] = num / den if den else None
    return out


def _remedies(
    pts: Sequence[ConfigPoint],
    dims: Sequence[str],
    edges: Sequence[EdgeResult],
    fit: Sequence[ScalingFit],
    failures: Sequence[dict[str, Any]],
    seeds: Mapping[str, Any],
    lr_key: str,
) -> list[Remedy]:
    out: list[Remedy] = []
    bracketed = [e for e in edges if e.censored is None and e.edge is not None]
    above = sum(int(f["where"].get("above", 0)) for f in failures if f["run_class"] != STUCK_AT_CHANCE)
    if bracketed and above:
        lim = "; ".join(f"{_group_text(e.group)}: <= {_fmt(e.lo)}" for e in bracketed[:4])
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
                + "; ".join(_group_text(e.group) for e in edges if e.censored == "below")[:300],
            )
        )
    for dim in dims:
        if dim == lr_key:
            continue
        cmp = _compare(pts, dim)
        if cmp is None:
            continue
        a, b, _, ev = cmp
        out.append(Remedy(_remedy_name(dim, a, b), ev + "."))
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
    share = seeds.get("share_mixed")
    if isinstance(share, float) and share >= MIXED_SHARE:
        n = int(seeds["seeds_per_config"])
        w_now = _width(n)
        w_more = _width(3 * n)
        out.append(
            Remedy(
                "Run more seeds",
                f"{_pct(share)} of configurations are decided by seed luck; at a 50% success rate "
                f"{n} seeds give a 95% interval {w_now:.2f} wide, {3 * n} seeds {w_more:.2f}.",
            )
        )
    slow = sum(p.summary.class_counts.get(SLOW, 0) for p in pts)
    total = sum(p.summary.n for p in pts)
    if total and slow / total >= 0.25:
        out.append(
            Remedy(
                "Train for more epochs (or raise the learning rate inside the stable band)",
                f"{slow} of {total} runs were still improving when training stopped.",
            )
        )
    return out


def _remedy_name(dim: str, best: Any, worst: Any) -> str:
    if dim == "clipnorm" and _num(worst) == 0 and _num(best) > 0:
        return f"Clip gradients (clipnorm={_fmt(best)})"
    if dim == "clipnorm":
        return f"Use clipnorm={_fmt(best)} rather than {_fmt(worst)}"
    if dim == "schedule" and worst == "constant":
        return f"Decay the learning rate ({best} schedule rather than constant)"
    if dim == "batch_size" and _num(best) > _num(worst):
        return f"Use a larger batch ({_fmt(best)} rather than {_fmt(worst)})"
    return f"Use {dim}={_fmt(best)} rather than {_fmt(worst)}"


def _headline(pts: Sequence[ConfigPoint], r: Report, lr_key: str) -> str:
    if not pts:
        return "No finished runs yet."
    stable = [s for s in r.stable_region if s["stable_lrs"] is not None]
    top = r.dimension_effects[0] if r.dimension_effects and r.dimension_effects[0]["effect"] > 0 else None
    tail = f"; {top['dim']} moves the outcome most" if top else ""
    fail = f"; failing runs mostly {_LABEL[r.failures[0]['run_class']]}" if r.failures else ""
    if not r.stable_region:
        k = sum(p.summary.successes for p in pts)
        n = sum(p.summary.n for p in pts)
        return f"{k} of {n} runs trained stably{fail}{tail}."
    if not stable:
        return f"No {lr_key} tried was stable (>= half the seeds, none diverged){fail}{tail}."
    # Name only the parameters that differ between groups: "optimizer=rmsprop"
    # on every group of a single-optimizer sweep says nothing.
    keys = {k for s in r.stable_region for k in s["group"]}
    varying = sorted(
        (k for k in keys if len({repr(s["group"].get(k)) for s in r.stable_region}) > 1),
        key=lambda k: (k != "batch_size", k),
    )
    bands: dict[str, list[str]] = {}
    for s in stable:
        label = ", ".join(f"{k}={_fmt(s['group'].get(k))}" for k in varying)
        bands.setdefault(_band(s), []).append(label)
    parts = []
    for band, labels in list(bands.items())[:3]:
        where = f" at {' and '.join(lb for lb in labels if lb)}" if any(labels) else ""
        parts.append(f"{band}{where}")
    more = f" (and {len(bands) - 3} more)" if len(bands) > 3 else ""
    return f"Training is stable for {lr_key} {'; '.join(parts)}{more}{fail}{tail}."


def _band(s: Mapping[str, Any]) -> str:
    lo, hi = s["stable_lrs"]
    if s["censored"] == "above":
        return f"up to {_fmt(hi)} (the largest tried)"
    if lo == hi:
        return f"= {_fmt(lo)} only"
    return f"from {_fmt(lo)} to {_fmt(hi)}"


def _scaling_text(f: Mapping[str, Any]) -> str:
    who = f"{f['optimizer']}: " if f.get("optimizer") else ""
    if f["slope"] is None:
        return f"{who}too few bracketed edges to fit an exponent."
    ci = f" (95% CI {f['ci'][0]:.2f} to {f['ci'][1]:.2f})" if f.get("ci") else ""
    exp = f"; expected ~{f['expected']:g}" if f.get("expected") is not None else ""
    return f"{who}edge ~ batch_size^{f['slope']:.2f}{ci} from {f['n_points']} bracketed edges{exp}."


def _group_text(group: Mapping[str, Any]) -> str:
    if not group:
        return "all"
    return ", ".join(
        f"{k}={_fmt(v)}" for k, v in sorted(group.items(), key=lambda kv: (kv[0] != "batch_size", kv[0]))
    )


def _width(n: int) -> float:
    lo, hi = wilson_interval(n // 2, n)
    return hi - lo


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"
