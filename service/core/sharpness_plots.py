"""What the pages draw of the sharpness curves (docs/sharpness.md): measured epochs only.

Sharpness is estimated every ``record_sharpness.every`` epochs, so the other
epochs have no value; sampling the epochs evenly (as ``plots`` does for the
loss) could miss every measured one. These series keep only the measured
epochs, sampled to at most ``max_points``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.core.analysis import FAILURE_CLASSES
from service.core.plots import MAX_DRAWN_SEEDS, _finite, _quartiles, _sample_indices
from service.core.records import CurvePoint, RunRecord
from service.core.results.sweep_data import FINISHED

SHARPNESS_FIELDS = ("sharpness", "preconditioned_sharpness", "stability_threshold")


def _measured(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    return [p for p in points if _finite(p.sharpness) is not None]


def compared_metric(points: Sequence[CurvePoint]) -> str:
    """The quantity the threshold applies to: preconditioned for adaptive optimizers."""
    if any(_finite(p.preconditioned_sharpness) is not None for p in points):
        return "preconditioned_sharpness"
    return "sharpness"


def run_sharpness(points: Sequence[CurvePoint], *, max_points: int = 1000) -> dict[str, Any] | None:
    """One run's measured epochs and their three values; None when the run has no estimate."""
    measured = _measured(points)
    if not measured:
        return None
    keep = _sample_indices(len(measured), max_points)
    return {
        "epoch": [measured[i].epoch for i in keep],
        "compared": compared_metric(measured),
        **{f: [_finite(getattr(measured[i], f)) for i in keep] for f in SHARPNESS_FIELDS},
    }


def sharpness_band(
    runs: Sequence[RunRecord], curves: Mapping[int, Sequence[CurvePoint]], *, max_points: int = 300
) -> dict[str, Any] | None:
    """Median and interquartile band over the stable seeds at each measured epoch, failed seeds apart.

    None when no finished run of the configuration has a sharpness estimate.
    """
    finished = [r for r in runs if r.status in FINISHED and r.run_class is not None]
    measured = {r.id: _measured(curves.get(r.id, ())) for r in finished}
    if not any(measured.values()):
        return None
    compared = compared_metric([p for pts in measured.values() for p in pts])
    stable = [r for r in finished if r.run_class not in FAILURE_CLASSES]
    failed = [r for r in finished if r.run_class in FAILURE_CLASSES]
    epochs = sorted({p.epoch for r in stable for p in measured[r.id]})
    epochs = [epochs[i] for i in _sample_indices(len(epochs), max_points)]
    by_epoch = [{p.epoch: p for p in measured[r.id]} for r in stable]
    band: dict[str, Any] = {"epochs": epochs, "n_stable": len(stable)}
    for f in SHARPNESS_FIELDS:
        med, q25, q75 = [], [], []
        for e in epochs:
            vals = [v for pts in by_epoch if e in pts and (v := _finite(getattr(pts[e], f))) is not None]
            lo, m, hi = _quartiles(vals)
            med.append(m)
            q25.append(lo)
            q75.append(hi)
        band[f] = {"median": med, "q25": q25, "q75": q75}

    def line(r: RunRecord) -> dict[str, Any]:
        series = run_sharpness(measured[r.id], max_points=max_points) or {"epoch": [], compared: []}
        return {
            "run_id": r.id,
            "seed": r.seed,
            "run_class": r.run_class,
            "epochs": series["epoch"],
            "value": series[compared],
        }

    return {
        "compared": compared,
        "band": band,
        "failed": [line(r) for r in failed[:MAX_DRAWN_SEEDS] if measured[r.id]],
    }
