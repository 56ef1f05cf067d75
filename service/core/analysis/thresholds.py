"""Run-class names and every threshold of the run classifier, with its source.

All thresholds live here (docs/architecture.md, "Run classes") so a sweep can override any of them by
name (``SweepSpec.stability``) and a reader can see where each number comes
from. Loss thresholds are *relative* (to the best loss, to ``l0 - L_min``, to
``l0`` or to the chance loss) so the classification does not depend on the
loss's units: see ``classify.classify_run`` for the exact invariance.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.core.errors import InvalidSpec

# Run classes, in the order the rules are tried (first match wins, docs/architecture.md).
DIVERGED = "diverged"
RISES_AFTER_MIN = "rises_after_min"
STUCK_AT_CHANCE = "stuck_at_chance"
NOISY = "noisy"
SLOW = "slow"
CONVERGED = "converged"
RUN_CLASSES: tuple[str, ...] = (DIVERGED, RISES_AFTER_MIN, STUCK_AT_CHANCE, NOISY, SLOW, CONVERGED)

# A seed "trained stably" when it did not fail. The class rules call noisy "not
# failed", and slow is compute-bound rather than unstable, so both count as
# successes next to converged; success rates then measure *stability*, not
# speed. The three failures are the ones a user would re-run or re-tune for.
FAILURE_CLASSES: frozenset[str] = frozenset({DIVERGED, RISES_AFTER_MIN, STUCK_AT_CHANCE})
SUCCESS_CLASSES: frozenset[str] = frozenset({NOISY, SLOW, CONVERGED})

# Flags: extra observations that do not change the class.
FLAG_REGRESSING = "regressing"  # train loss gave back part of its progress (R > regressing)
FLAG_OVERFITTING = "overfitting"  # validation loss rises after its minimum, train loss does not
FLAG_PLATEAUED = "plateaued"  # target not reached and the loss is no longer clearly falling
FLAG_NONFINITE = "nonfinite"  # training stopped at a NaN/Inf loss
FLAG_SPIKES = "spikes"  # the loss spiked and recovered (count and size in the metrics spikes, largest_spike)
FLAGS: tuple[str, ...] = (FLAG_REGRESSING, FLAG_OVERFITTING, FLAG_PLATEAUED, FLAG_NONFINITE, FLAG_SPIKES)


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of the run classifier (docs/architecture.md, "Run classes"); override per sweep by name.

    Window sizes are in epochs. Fractions of ``T`` are fractions of the epochs run.
    """

    # Rule 1. fastai / ktrain LR finder: stop once the smoothed loss exceeds
    # 4x the best smoothed loss seen so far (fastai ``LRFinder``, Howard & Gugger 2020).
    # The LR finder stops at the first such excess; a training run goes on, and a
    # run whose loss spiked and came back down has not diverged. So the rule is
    # tested on the smoothed loss at the end of the run: still this far above
    # its best means it did not recover (a recovered spike is the ``spikes`` flag).
    divergence_factor: float = 4.0
    # The LR finder smooths per-step losses with an EMA; our curves are per-epoch
    # full-training-set losses, so a short trailing mean plays that role.
    smoothing_window: int = 3
    # The ratio rule alone calls a run that fitted to 1e-4 and wobbles to 5e-4
    # "diverged"; the LR finder never sees losses that close to zero. So the
    # smoothed loss must also have climbed back this fraction of ``l0 - best``
    # (our addition; 0 restores the bare 4x rule).
    divergence_min_rise_frac: float = 0.5
    # Rule 2. Google's Deep Learning Tuning Playbook (Godbole et al. 2023):
    # a rise after a steady decline is the sign of optimisation instability.
    # R = (L_end - L_min) / (l0 - L_min) above this, with the minimum before
    # rebound_tmin_frac * T, is "rises after its minimum".
    rebound_rises: float = 0.5
    rebound_tmin_frac: float = 0.8
    # A milder rebound above this is the "regressing" flag (docs/architecture.md, "Run classes").
    regressing: float = 0.1
    # Rule 3. Dodge et al. 2020 and Mosbach et al. 2021 call a fine-tuning run
    # failed when it ends at or below majority-class accuracy; we add the
    # loss form: L_end within chance_band of l_chance and never below
    # chance_floor * l_chance.
    chance_band: float = 0.05
    chance_floor: float = 0.9
    # Rule 4. Late-window noise: more than this fraction of late epochs raise
    # the loss, or the detrended late std exceeds noisy_std_frac * (l0 - L_min).
    noisy_increase_frac: float = 0.4
    noisy_std_frac: float = 0.1
    # A late increase only counts when larger than this fraction of l0 - L_min,
    # so floating-point jitter of a fitted loss is not "noise" (our addition).
    noisy_increase_min_frac: float = 0.01
    # The late window: the last late_window_frac of the epochs, at least
    # late_window_min epochs (a slope and a std need a few points).
    late_window_frac: float = 0.25
    late_window_min: int = 3
    # L_end and the final accuracy are means of the last end_window epochs, so
    # that one lucky or unlucky last epoch does not decide the class.
    end_window: int = 3
    # Rule 5. "Slow": the late slope of ln(loss), per run length (d ln L / d(t/T)),
    # is at or below this: continuing the current trend for another T epochs
    # would still cut the loss by e^0.5 ~ 1.6x. Compute-bound, not unstable.
    slow_log_slope: float = -0.5
    # Rule 6. "Converged" needs the target and a rebound no larger than this.
    converged_rebound: float = 0.1
    # Target for classifiers: final training accuracy (the reports' users judge
    # runs by reaching ~90-100% training accuracy).
    target_accuracy: float = 0.9
    # Target for regression (num_classes == 0), or a classifier without an
    # accuracy curve: L_end <= target_loss_frac * l0. 0.1 removes 90% of the
    # initial loss, the analogue of R^2 = 0.9 for an MSE loss at a zero-output init.
    target_loss_frac: float = 0.1
    # Spikes (docs/architecture.md, "Fluctuation"): an epoch whose loss exceeds
    # spike_factor x the previous epoch's starts a spike (report 1's losses jumped
    # 2-4x between epochs), if the rise is also at least spike_min_rise_frac of
    # l0 - L_min (so the jitter of a near-zero fitted loss is no spike; our addition).
    spike_factor: float = 2.0
    spike_min_rise_frac: float = 0.05

    def with_overrides(self, overrides: Mapping[str, float]) -> Thresholds:
        """A copy with ``overrides`` applied; unknown names or bad values raise InvalidSpec."""
        valid = {f.name: f for f in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in valid:
                raise InvalidSpec(
                    f"stability.{name} is not a threshold; valid names are: {', '.join(sorted(valid))}"
                )
            changes[name] = _coerce(name, value, is_int=valid[name].type in ("int", int))
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


# (low, high, low inclusive, high inclusive) of each threshold's valid range.
_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "divergence_factor": (1.0, math.inf, False, False),
    "smoothing_window": (1, 1000, True, True),
    "divergence_min_rise_frac": (0.0, math.inf, True, False),
    "rebound_rises": (0.0, math.inf, False, False),
    "rebound_tmin_frac": (0.0, 1.0, False, True),
    "regressing": (0.0, math.inf, True, False),
    "chance_band": (0.0, 1.0, True, True),
    "chance_floor": (0.0, 1.0, True, True),
    "noisy_increase_frac": (0.0, 1.0, True, True),
    "noisy_std_frac": (0.0, math.inf, True, False),
    "noisy_increase_min_frac": (0.0, 1.0, True, True),
    "late_window_frac": (0.0, 1.0, False, True),
    "late_window_min": (2, 10000, True, True),
    "end_window": (1, 10000, True, True),
    "slow_log_slope": (-math.inf, 0.0, False, True),
    "converged_rebound": (0.0, 1.0, True, True),
    "target_accuracy": (0.0, 1.0, True, True),
    "target_loss_frac": (0.0, 1.0, False, True),
    "spike_factor": (1.0, math.inf, False, False),
    "spike_min_rise_frac": (0.0, math.inf, True, False),
}


def valid_range(name: str) -> tuple[float, float, bool, bool]:
    """(low, high, low inclusive, high inclusive) of a threshold (for the OpenAPI document)."""
    return _RANGES[name]


def _coerce(name: str, value: Any, *, is_int: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidSpec(f"stability.{name}: {value!r} is not a finite number")
    if is_int and float(value) != int(value):
        raise InvalidSpec(f"stability.{name}: {value!r} must be a whole number of epochs")
    lo, hi, lo_inc, hi_inc = _RANGES[name]
    ok_lo = value >= lo if lo_inc else value > lo
    ok_hi = value <= hi if hi_inc else value < hi
    if not (ok_lo and ok_hi):
        left, right = ("[" if lo_inc else "("), ("]" if hi_inc else ")")
        raise InvalidSpec(f"stability.{name}: {value!r} is outside its valid range {left}{lo}, {hi}{right}")
    return int(value) if is_int else float(value)
