"""Why runs fail, from curvature: did the sharpness reach its stability threshold first?

Answered only for sweeps that record sharpness (``record_sharpness``), from each
run's ``analysis.sharpness`` metrics: for the runs that rose, spiked or diverged,
whether the sharpness (preconditioned for adaptive optimizers) had reached its
threshold before the failure began and how many epochs before; for the stable
runs, how far below it they stayed (the headroom, threshold / peak). The theory
is Cohen et al. 2021 and 2022 (docs/sharpness.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.analysis.diagnosis.sections import Answer
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary
from service.core.analysis.sharpness import REACH_FRACTION
from service.core.analysis.thresholds import FAILURE_CLASSES

QUESTION = "Does curvature explain where training fails (the edge of stability)?"


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if values else None


def _quartiles(values: Sequence[float]) -> list[float] | None:
    return [float(q) for q in np.quantile(values, [0.25, 0.75])] if values else None


def curvature_answer(pts: Sequence[ConfigPoint]) -> Answer | None:
    """The answer, or None when no run of the sweep carries a sharpness measure."""
    measured = [(p.config_id, r) for p in pts for r in p.summary.runs if r.sharpness]
    if not measured:
        return None
    failed = [(c, r) for c, r in measured if "failure_onset_epoch" in r.sharpness]
    first = [r for _, r in failed if r.sharpness.get("sharpness_reached_first") == 1.0]
    leads = [r.sharpness["failure_onset_epoch"] - r.sharpness["sharpness_reached_epoch"] for r in first]
    not_first = [r.sharpness["sharpness_peak_ratio"] for _, r in failed if r not in first]
    stable = [
        r
        for _, r in measured
        if "failure_onset_epoch" not in r.sharpness and r.run_class not in FAILURE_CLASSES
    ]
    peaks = [r.sharpness["sharpness_peak_ratio"] for r in stable]
    at_edge = sum(1 for v in peaks if v >= REACH_FRACTION)
    parts = [f"Sharpness was measured on {len(measured)} runs."]
    if failed:
        parts.append(_failed_text(failed, first, leads, not_first))
    if stable:
        headroom = [1.0 / v for v in peaks if v > 0]
        parts.append(
            f"The {len(stable)} stable runs peaked at a median {100 * (_median(peaks) or 0):.0f}% of their "
            f"threshold (headroom threshold / peak: median {(_median(headroom) or 0):.2g}); "
            f"{at_edge} of them reached at least {100 * REACH_FRACTION:.0f}% of it and still did not "
            "fail: training can hover at the edge of stability rather than diverge (Cohen et al. 2021)."
        )
    evidence: dict[str, Any] = {
        "measured_runs": len(measured),
        "failed_runs": len(failed),
        "failed_by_class": _by_class(r for _, r in failed),
        "reached_first": len(first),
        "lead_epochs_median": _median(leads),
        "lead_epochs_iqr": _quartiles(leads),
        "failed_below_peak_ratio_median": _median(not_first),
        "stable_runs": len(stable),
        "stable_peak_ratio_median": _median(peaks),
        "stable_peak_ratio_iqr": _quartiles(peaks),
        "stable_at_edge": at_edge,
        "reach_fraction": REACH_FRACTION,
    }
    return Answer(
        "curvature",
        QUESTION,
        " ".join(parts),
        evidence=evidence,
        config_ids=tuple(sorted({c for c, _ in failed})),
    )


def _by_class(runs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in runs:
        key = r.run_class if r.run_class in FAILURE_CLASSES else "spiked"
        out[key] = out.get(key, 0) + 1
    return out


def _failed_text(
    failed: Sequence[tuple[int, RunSummary]],
    first: Sequence[RunSummary],
    leads: Sequence[float],
    not_first: Sequence[float],
) -> str:
    n = len(failed)
    text = (
        f"Of the {n} runs that rose after their minimum, spiked or diverged, {len(first)} "
        f"({100 * len(first) / n:.0f}%) had first brought their sharpness to the stability threshold "
        f"(at least {100 * REACH_FRACTION:.0f}% of it)"
    )
    if leads:
        text += f", a median {np.median(leads):.0f} epochs before the failure began"
    text += "."
    if not_first:
        text += (
            f" The other {len(not_first)} failed with the sharpness below it (median peak "
            f"{100 * float(np.median(not_first)):.0f}% of the threshold): curvature does not explain "
            "those; look at mini-batch noise, the schedule or the measurement spacing (every)."
        )
    return text
