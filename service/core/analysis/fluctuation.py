"""How much one run's loss jumps between epochs (docs/architecture.md, "Fluctuation").

Report 1's user asked "my loss jumps around: is that normal, and why?". A
class ("noisy") does not answer that; these measures do, per run, from the
full-training-set loss evaluated after every epoch:

* **fluctuation index**: the noise level of ln(loss) per epoch in the late
  window (the second half of training). With d_t = ln L_t - ln L_{t-1}, the
  trend is removed by subtracting the median of d (a smooth trend moves every
  d by about the same amount; a linear trend of ln L is exactly a constant in
  d), and the index is ``1.4826 * MAD(d) / sqrt(2)``. Why the MAD and not the
  standard deviation: one large spike would dominate a standard deviation, and
  spikes are counted apart (below); the MAD (breakdown point 50%) measures the
  typical epoch-to-epoch wobble. 1.4826 makes the MAD a consistent estimate of
  a Gaussian standard deviation, and sqrt(2) undoes the differencing: when
  ln L_t = trend(t) + sigma * e_t with independent e_t, the index estimates
  sigma. Why differences rather than residuals from a fitted curve: they
  need no model of the trend (exponential, power law, plateau) and a slowly
  bending trend barely moves them. Units: natural-log units, so 0.1 is "about
  10% per epoch", and it does not depend on the loss's units.
* **jump factor** (``jump_p90``): exp of the 90th percentile of |d - median d|
  in the late window: nine in ten epoch-to-epoch changes are within this
  factor. This is the "loss jumps of ~Nx between epochs" of the headline.
* **spikes**: an epoch whose loss exceeds ``spike_factor`` x the previous
  epoch's (and rises by at least ``spike_min_rise_frac`` of l0 - L_min, so the
  jitter of a fitted near-zero loss is no spike) starts a spike; it lasts until
  the loss is back at or below the pre-spike level, which is the recovery.
  ``spikes`` counts recovered spikes, ``largest_spike`` is the largest
  peak / pre-spike ratio among them, ``unrecovered_spike`` the ratio of a spike
  still open when training stopped (None when none is open).
* the same index for the **running-mean loss** (the mean of the mini-batch
  losses during the epoch, what Keras displays): comparing the two tells how
  much of what the user saw is mini-batch averaging rather than the model.
* with ``record_steps``, the **mini-batch loss variance** over the second half
  of the recorded steps, about a straight line through them (so the decline
  of the loss is not counted as variance), and the same as a standard
  deviation of ln(mini-batch loss) (``step_log_std``).

Pure numpy: no database, no HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

MAD_TO_SIGMA = 1.4826  # 1 / Phi^-1(3/4): MAD of a Gaussian -> its standard deviation
MIN_LATE_DIFFS = 3  # fewer late epoch-to-epoch changes than this give no index
# The fewest epochs whose second half holds MIN_LATE_DIFFS changes: ceil(E / 2) >= MIN_LATE_DIFFS.
MIN_EPOCHS = 2 * MIN_LATE_DIFFS - 1

# The per-run metrics this module adds to a run's metrics (stored in the run's JSON).
FLUCTUATION_KEYS: tuple[str, ...] = (
    "fluctuation",
    "jump_p90",
    "running_fluctuation",
    "spikes",
    "largest_spike",
    "unrecovered_spike",
    "step_loss_var",
    "step_log_std",
)


@dataclass(frozen=True)
class Spike:
    """One rise of the loss: its first epoch, peak / pre-spike ratio, epoch of recovery (None: never)."""

    start: int
    size: float
    recovered_at: int | None


def fluctuation_index(loss: Sequence[float] | FloatArray) -> float | None:
    """Noise level of ln(loss) per epoch over the second half of the curve (module docstring).

    Non-positive or non-finite values end the usable curve (whatever follows
    a NaN is not training). None when the late window has fewer than
    ``MIN_LATE_DIFFS`` changes.
    """
    d = _late_log_diffs(loss)
    if d is None:
        return None
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med)))
    return MAD_TO_SIGMA * mad / math.sqrt(2.0)


def jump_factor(loss: Sequence[float] | FloatArray, quantile: float = 0.9) -> float | None:
    """exp of the ``quantile`` of |detrended ln-loss change| in the late window (module docstring)."""
    d = _late_log_diffs(loss)
    if d is None:
        return None
    dev = np.abs(d - np.median(d))
    return float(math.exp(float(np.quantile(dev, quantile))))


def find_spikes(
    loss: Sequence[float] | FloatArray, *, factor: float = 2.0, min_rise_frac: float = 0.05
) -> list[Spike]:
    """Every spike of the finite prefix of ``loss`` (index 0 = initialisation), in order.

    A spike starts at epoch t when L_t > factor * L_{t-1} and L_t - L_{t-1} >
    min_rise_frac * (l0 - L_min); its pre-spike level is L_{t-1}; it recovers
    at the first later epoch whose loss is <= that level. Rises while a spike
    is open belong to it (its peak grows), so 1 -> 3 -> 7 -> 0.9 is one spike
    of size 7.
    """
    u = _finite_prefix(loss)
    if u.size < 2:
        return []
    span = float(u[0] - u.min())
    min_rise = min_rise_frac * span if span > 0 else 0.0
    spikes: list[Spike] = []
    open_start: int | None = None
    base = peak = 0.0
    for t in range(1, u.size):
        prev, cur = float(u[t - 1]), float(u[t])
        if open_start is None:
            if prev > 0 and cur > factor * prev and cur - prev > min_rise:
                open_start, base, peak = t, prev, cur
            continue
        peak = max(peak, cur)
        if cur <= base:
            spikes.append(Spike(open_start, peak / base, t))
            open_start = None
    if open_start is not None:
        spikes.append(Spike(open_start, peak / base, None))
    return spikes


def step_loss_stats(step_losses: Sequence[Sequence[float]] | None) -> tuple[float | None, float | None]:
    """(variance of mini-batch losses, std of their ln) over the second half of the recorded steps.

    Both about a least-squares line in the step index, so that the loss's
    decline is not counted as variance. ``step_losses`` is (step, loss) pairs.
    None, None when fewer than 4 finite points are in the second half.
    """
    if not step_losses:
        return None, None
    arr = np.array([(float(s), float(v)) for s, v in step_losses], dtype=np.float64)
    arr = arr[np.isfinite(arr[:, 1])]
    late = arr[arr.shape[0] // 2 :]
    if late.shape[0] < 4:
        return None, None
    steps, vals = late[:, 0], late[:, 1]
    var = float(np.var(_detrended(steps, vals)))
    positive = vals > 0
    log_std = (
        float(np.std(_detrended(steps[positive], np.log(vals[positive])))) if positive.sum() >= 4 else None
    )
    return var, log_std


def fluctuation_metrics(
    loss: Sequence[float] | FloatArray,
    *,
    running_loss: Sequence[float | None] | FloatArray | None = None,
    step_losses: Sequence[Sequence[float]] | None = None,
    spike_factor: float = 2.0,
    spike_min_rise_frac: float = 0.05,
) -> dict[str, Any]:
    """Every per-run fluctuation measure, keyed as ``FLUCTUATION_KEYS`` (None where not measurable)."""
    spikes = find_spikes(loss, factor=spike_factor, min_rise_frac=spike_min_rise_frac)
    recovered = [s.size for s in spikes if s.recovered_at is not None]
    still_open = [s.size for s in spikes if s.recovered_at is None]
    running = None
    if running_loss is not None:
        # Epoch 0 has no running mean (no step yet): the curve starts at epoch 1.
        vals = [math.nan if v is None else float(v) for v in running_loss]
        running = fluctuation_index(_leading_nan_dropped(vals))
    var, log_std = step_loss_stats(step_losses)
    return {
        "fluctuation": fluctuation_index(loss),
        "jump_p90": jump_factor(loss),
        "running_fluctuation": running,
        "spikes": len(recovered),
        "largest_spike": max(recovered) if recovered else None,
        "unrecovered_spike": still_open[0] if still_open else None,
        "step_loss_var": var,
        "step_log_std": log_std,
    }


def _finite_prefix(loss: Sequence[float] | FloatArray) -> FloatArray:
    a = np.asarray(loss, dtype=np.float64).reshape(-1)
    bad = ~np.isfinite(a)
    return a[: int(np.argmax(bad))] if bad.any() else a


def _leading_nan_dropped(vals: list[float]) -> list[float]:
    i = 0
    while i < len(vals) and not math.isfinite(vals[i]):
        i += 1
    return vals[i:]


def _late_log_diffs(loss: Sequence[float] | FloatArray) -> FloatArray | None:
    u = _finite_prefix(loss)
    if (u <= 0).any():
        u = u[: int(np.argmax(u <= 0))]
    if u.size < 2:
        return None
    late = u[(u.size - 1) // 2 :]  # the second half of the epochs run (epoch 0 is initialisation)
    d = np.diff(np.log(late))
    return d if d.size >= MIN_LATE_DIFFS else None


def _detrended(x: FloatArray, y: FloatArray) -> FloatArray:
    xc = x - x.mean()
    denom = float((xc * xc).sum())
    slope = float((xc * (y - y.mean())).sum()) / denom if denom > 0 else 0.0
    resid: FloatArray = y - y.mean() - slope * xc
    return resid
