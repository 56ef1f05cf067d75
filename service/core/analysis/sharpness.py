"""A run's sharpness curve reduced to what the diagnosis asks of it (docs/sharpness.md).

The compared quantity is the preconditioned sharpness for adaptive optimizers and
the sharpness otherwise; its ratio to the run's stability threshold at each
measured epoch says how close to the edge of stability the run trained. Per run:

- ``sharpness_peak_ratio``: the largest ratio over the measured epochs (of the
  finite prefix). Below 1 the run stayed below its threshold; its inverse is
  the **headroom** (2.5 = the sharpness never exceeded 40% of the threshold).
- ``sharpness_reached_epoch``: the first measured epoch whose ratio is at least
  ``REACH_FRACTION`` (0.9: an estimate at a few epochs' spacing sees the
  hovering at the edge a little below it as often as above it), or absent.
- ``failure_onset_epoch``: where the failure began: the first non-finite epoch of
  a diverged run (its last epoch when it diverged finitely), the minimum
  ``t_min`` of a run that rises after it, the first spike of a run that spiked;
  absent for a run that did none of these.
- ``sharpness_reached_first``: 1 when the ratio had reached ``REACH_FRACTION``
  at or before the onset, 0 when not; absent without an onset.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.core.analysis.fluctuation import find_spikes
from service.core.analysis.thresholds import DIVERGED, RISES_AFTER_MIN, Thresholds

REACH_FRACTION = 0.9
SHARPNESS_KEYS = (
    "sharpness_peak_ratio",
    "sharpness_reached_epoch",
    "failure_onset_epoch",
    "sharpness_reached_first",
)


def _finite(v: float | None) -> bool:
    return v is not None and bool(np.isfinite(v))


def compared_values(
    sharpness: Sequence[float | None], preconditioned: Sequence[float | None]
) -> list[float | None]:
    """The quantity the threshold applies to, epoch by epoch: preconditioned when the run has it."""
    if any(_finite(p) for p in preconditioned):
        return list(preconditioned)
    return list(sharpness)


def failure_onset(
    loss: Sequence[float], run_class: str | None, t_min: int | None, thresholds: Thresholds
) -> int | None:
    """The epoch the run's failure began, or None when it neither diverged, rose nor spiked."""
    finite = [bool(np.isfinite(v)) for v in loss]
    if run_class == DIVERGED:
        return finite.index(False) if False in finite else len(loss) - 1
    if run_class == RISES_AFTER_MIN and t_min is not None:
        return int(t_min)
    spikes = find_spikes(loss, factor=thresholds.spike_factor, min_rise_frac=thresholds.spike_min_rise_frac)
    return spikes[0].start if spikes else None


def sharpness_metrics(
    epochs: Sequence[int],
    compared: Sequence[float | None],
    threshold: Sequence[float | None],
    onset: int | None,
) -> dict[str, float]:
    """The per-run metrics of the module docstring (keys with no value are left out)."""
    ratios = [
        (e, c / t)
        for e, c, t in zip(epochs, compared, threshold, strict=True)
        if c is not None and t is not None and np.isfinite(c) and np.isfinite(t) and t > 0
        if onset is None or e <= onset
    ]
    # Past the onset the curve is no longer training (a diverged run's last epochs): the peak
    # is taken over the whole measured curve of a stable run, up to the onset of a failed one.
    out: dict[str, float] = {}
    if not ratios:
        return out
    out["sharpness_peak_ratio"] = max(r for _, r in ratios)
    reached = next((e for e, r in ratios if r >= REACH_FRACTION), None)
    if reached is not None:
        out["sharpness_reached_epoch"] = float(reached)
    if onset is not None:
        out["failure_onset_epoch"] = float(onset)
        out["sharpness_reached_first"] = 1.0 if reached is not None else 0.0
    return out
