"""The diagnosis in words: each section's sentence, the headline, and the report as Markdown.

The wording is part of what users read and of stored reports; the golden
tests in ``tests/core/analysis/test_diagnosis_golden.py`` pin it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.core.analysis.diagnosis.evidence import FailurePlacement, SeedLuck
from service.core.analysis.diagnosis.sections import Report
from service.core.analysis.edge import EdgeResult
from service.core.analysis.edge_scaling import ScalingFit
from service.core.analysis.fluctuation_scaling import FluctuationSummary
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.thresholds import (
    CONVERGED,
    DIVERGED,
    NOISY,
    RISES_AFTER_MIN,
    SLOW,
    STUCK_AT_CHANCE,
)

# A stable region whose runs' loss typically jumps by this factor between epochs is "stable but noisy".
NOISY_JUMP = 1.5

LABEL = {
    DIVERGED: "diverge",
    RISES_AFTER_MIN: "rise after their minimum",
    STUCK_AT_CHANCE: "stay stuck at chance",
    NOISY: "train noisily",
    SLOW: "are still improving when training stops (slow)",
    CONVERGED: "converge",
}
# Said first about seeds when a sweep's every seed started from a .keras file's weights.
SAVED_INIT = (
    "Every seed started from the same saved weights (init: saved), so only the order of the "
    "mini-batches varied with the seed."
)


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def group_text(group: Mapping[str, Any]) -> str:
    """``batch_size=32, beta_1=0.9``: batch size first, then by name; ``all`` for the empty group."""
    if not group:
        return "all"
    return ", ".join(
        f"{k}={fmt(v)}" for k, v in sorted(group.items(), key=lambda kv: (kv[0] != "batch_size", kv[0]))
    )


def stable_region_text(e: EdgeResult, stable: Sequence[float], lr_key: str) -> str:
    if e.censored == "below":
        return f"no {lr_key} tried was stable (the edge is below {fmt(e.hi)}, the smallest tried)"
    if e.censored == "above":
        return (
            f"stable from {fmt(min(stable))} up to the largest {lr_key} tried, {fmt(e.lo)} "
            f"(the edge is above {fmt(e.lo)}, the largest tried)"
        )
    text = (
        f"stable from {fmt(min(stable))} to {fmt(e.lo)}; edge ~ {fmt(e.edge)} "
        f"(between {fmt(e.lo)} and {fmt(e.hi)})"
    )
    if e.stable_again_above:
        text += "; some larger values were stable again (seed luck or a narrow window)"
    return text


def failure_text(f: FailurePlacement, total: int, lr_key: str) -> str:
    place = {
        "above": f"above the edge (larger {lr_key})",
        "below": f"below the stable band (smaller {lr_key})",
        "inside": "inside the stable band, on unlucky seeds",
    }[f.main_place]
    return f"{f.runs} of {total} runs {LABEL[f.run_class]} ({pct(f.runs / total)}), mostly {place}."


NO_RUNS = "No finished runs yet."


def seed_text(luck: SeedLuck) -> str:
    text = (
        f"{luck.mixed} of {luck.n_configs} configurations ({pct(luck.share_mixed)}) have both stable and "
        f"failed seeds; with {luck.seeds_per_config} seeds per configuration the 95% interval of a success "
        f"rate is {luck.mean_wilson_width:.2f} wide on average."
    )
    init, data = luck.components.get("init"), luck.components.get("data")
    if init is not None and data is not None:
        which = "initial weights" if init > data else "data order"
        text += (
            f" Within those configurations the init seed explains {pct(init)} of the outcome variance "
            f"and the data-order seed {pct(data)}: the luck is mostly in the {which}."
        )
    return text


def headline(pts: Sequence[ConfigPoint], r: Report, lr_key: str) -> str:
    """One sentence: the stable band per group, what failing runs mostly do, the dimension that matters."""
    if not pts:
        return NO_RUNS
    stable = [(s, s.stable_lrs) for s in r.stable_region if s.stable_lrs is not None]
    top = r.dimension_effects[0] if r.dimension_effects and r.dimension_effects[0].effect > 0 else None
    tail = f"; {top.dim} moves the outcome most" if top else ""
    fail = f"; failing runs mostly {LABEL[r.failures[0].run_class]}" if r.failures else ""
    if not r.stable_region:
        k = sum(p.summary.successes for p in pts)
        n = sum(p.summary.n for p in pts)
        return f"{k} of {n} runs trained stably{fail}{tail}."
    if not stable:
        return f"No {lr_key} tried was stable (>= half the seeds, none diverged){fail}{tail}."
    # Name only the parameters that differ between groups: "optimizer=rmsprop"
    # on every group of a single-optimizer sweep says nothing.
    keys = {k for s in r.stable_region for k in s.group}
    varying = sorted(
        (k for k in keys if len({repr(s.group.get(k)) for s in r.stable_region}) > 1),
        key=lambda k: (k != "batch_size", k),
    )
    bands: dict[str, list[str]] = {}
    for s, (lo, hi) in stable:
        label = ", ".join(f"{k}={fmt(s.group.get(k))}" for k in varying)
        bands.setdefault(_band(lo, hi, s.censored), []).append(label)
    parts = []
    for band, labels in list(bands.items())[:3]:
        where = f" at {' and '.join(lb for lb in labels if lb)}" if any(labels) else ""
        parts.append(f"{band}{where}")
    more = f" (and {len(bands) - 3} more)" if len(bands) > 3 else ""
    return f"Training is stable{_noisy(r)} for {lr_key} {'; '.join(parts)}{more}{fail}{tail}."


def _noisy(r: Report) -> str:
    """' but noisy (loss jumps of ~3.1x between epochs at batch 2, ~1.4x at batch 32)', or ''.

    A region whose stable runs' loss typically jumps by NOISY_JUMP or more
    between epochs is never called simply "stable" (report 1).
    """
    fl = r.fluctuation
    if fl is None or not fl.measured:
        return ""
    jumps = fl.jump_by_batch or fl.jump_by_lr
    if not jumps or max(jumps.values()) < NOISY_JUMP:
        return ""
    if len(fl.jump_by_batch) >= 2:
        (b0, j0), (b1, j1) = next(iter(jumps.items())), list(jumps.items())[-1]
        where = f"~{j0:.2g}x between epochs at batch {fmt(b0)}"
        if b1 != b0:
            where += f", ~{j1:.2g}x at batch {fmt(b1)}"
    else:
        where = f"~{max(jumps.values()):.2g}x between epochs"
    return f" but noisy (loss jumps of {where})"


def _band(lo: float, hi: float, censored: str | None) -> str:
    if censored == "above":
        return f"up to {fmt(hi)} (the largest tried)"
    if lo == hi:
        return f"= {fmt(lo)} only"
    return f"from {fmt(lo)} to {fmt(hi)}"


def fluctuation_lines(fl: FluctuationSummary) -> list[str]:
    """The Markdown bullets of the fluctuation section."""
    if not fl.measured:
        return ["- No run carries a fluctuation measure."]
    out = []
    if fl.jump_by_batch:
        out.append(
            "- Loss jumps between epochs (median jump factor of stable runs): "
            + ", ".join(f"batch {fmt(b)}: ~{j:.2g}x" for b, j in fl.jump_by_batch.items())
        )
    for f in fl.fits:
        if f.slope is None:
            continue
        ci = f" (95% CI {f.ci[0]:.2f} to {f.ci[1]:.2f})" if f.ci else ""
        exp = f"; expected ~{f.expected:g}" if f.expected is not None else ""
        rest = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(f.group.items())) or "all"
        out.append(f"- at {rest}: fluctuation ~ {f.along}^{f.slope:.2f}{ci}{exp}")
    for e in fl.effects:
        out.append(f"- `{e.dim}` moves fluctuation {e.fold:.2g}x across {fmt(e.lo)} to {fmt(e.hi)}")
    if fl.running_ratio is not None:
        out.append(f"- running-mean loss (Keras display) / full-set loss fluctuation: {fl.running_ratio:.2g}")
    return out


def scaling_text(f: ScalingFit) -> str:
    who = f"{f.optimizer}: " if f.optimizer else ""
    if f.slope is None:
        return f"{who}too few bracketed edges to fit an exponent."
    ci = f" (95% CI {f.ci[0]:.2f} to {f.ci[1]:.2f})" if f.ci else ""
    exp = f"; expected ~{f.expected:g}" if f.expected is not None else ""
    return f"{who}edge ~ batch_size^{f.slope:.2f}{ci} from {f.n_points} bracketed edges{exp}."


def report_to_markdown(report: Report, *, title: str = "Diagnosis") -> str:
    """The report as Markdown (headline, then one section per question)."""
    out = [f"# {title}", "", f"**{report.headline}**", "", "## Stable region"]
    if not report.stable_region:
        out.append("- No learning-rate groups to show.")
    for s in report.stable_region:
        out.append(f"- {group_text(s.group)}: {s.text}")
    out += ["", "## What fails, and where"]
    if not report.failures:
        out.append("- No run failed.")
    for f in report.failures:
        out.append(f"- {f.text}")
    out += ["", "## Which dimension matters most"]
    if not report.dimension_effects:
        out.append("- Only one dimension value was tried; nothing to compare.")
    for d in report.dimension_effects:
        rates = ", ".join(f"{fmt(v)}: {pct(r)}" for v, r in d.by_value)
        out.append(f"- `{d.dim}`: success rate moves by {pct(d.effect)} on average ({rates})")
    out += ["", "## Seed dependence", f"- {report.seed_dependence.text}"]
    if report.scaling:
        out += ["", "## Edge versus batch size"]
        for fit in report.scaling:
            out.append(f"- {scaling_text(fit)}")
    if report.fluctuation is not None:
        out += ["", "## Fluctuation", *fluctuation_lines(report.fluctuation)]
    if report.answers:
        out += ["", "## The three questions"]
        for a in report.answers:
            out += ["", f"**{a.question}**", "", a.answer]
            if a.missing:
                out += ["", f"_To answer this fully, add to the spec: {a.missing}._"]
    out += ["", "## Remedies the data supports"]
    if not report.remedies:
        out.append("- None beyond the stable region above: no tried change clearly helped.")
    for r in report.remedies:
        out.append(f"- **{r.remedy}** — {r.evidence}")
    return "\n".join(out) + "\n"
