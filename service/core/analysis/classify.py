"""Classify one training run from its per-epoch curve (docs/architecture.md, "Run classes").

Rules, first match wins:

1. ``diverged``: the run did not recover. A non-finite loss; or the smoothed
   loss *at the end* still exceeds ``divergence_factor`` x its best *and* has
   climbed back ``divergence_min_rise_frac`` of ``l0 - best`` (fastai LR-finder
   rule, with a guard against ratios of near-zero losses); or ``L_end >= l0``
   (Wortsman et al. 2023 cap losses at l0: such a run learned nothing). A spike
   that came back down, or a loss that swings while its envelope shrinks
   (momentum near its stability limit), is not divergence: recovered spikes
   are the ``spikes`` flag, counted and sized in the metrics (``fluctuation``).
2. ``rises_after_min``: R > ``rebound_rises`` with t_min < ``rebound_tmin_frac`` T.
3. ``stuck_at_chance``: final accuracy <= majority-class accuracy
   (classifiers), or L_end within ``chance_band`` of l_chance and L_min never
   below ``chance_floor`` l_chance. For regression l_chance is the loss of the
   best constant prediction (the mean of the targets for MSE): a run whose
   loss never leaves it learned nothing from the inputs.
4. ``noisy``: late increases or detrended late std above their thresholds.
5. ``slow``: target not reached and late log-slope <= ``slow_log_slope``.
6. ``converged``: target reached and R <= ``converged_rebound``.

The six rules leave two non-failed cases without a class; we resolve them so every
run gets exactly one class:

* target reached but R > ``converged_rebound`` (the loss gave back part of its
  progress without being noisy by rule 4): ``noisy``, with the ``regressing``
  flag saying why. It is not clean enough to be called converged, and it is
  not a failure.
* target not reached and the loss no longer clearly falling: ``slow`` with the
  ``plateaued`` flag (it did not get there; more epochs at this lr may not help).

Invariance: all loss rules compare ratios of losses, so multiplying the loss
curve (and ``l_chance``) by c > 0 leaves the class unchanged. Internally the
curve is divided by l0 first, which makes this exact in floating point for
powers of two and true up to one rounding otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.core.analysis.fluctuation import fluctuation_metrics
from service.core.analysis.thresholds import (
    CONVERGED,
    DIVERGED,
    FLAG_NONFINITE,
    FLAG_OVERFITTING,
    FLAG_PLATEAUED,
    FLAG_REGRESSING,
    FLAG_SPIKES,
    NOISY,
    RISES_AFTER_MIN,
    SLOW,
    STUCK_AT_CHANCE,
    Thresholds,
)

FloatArray = npt.NDArray[np.float64]
Metric = float | int | bool | None


@dataclass(frozen=True)
class RunCurve:
    """Per-epoch curves of one run. Index 0 is the evaluation at initialisation.

    ``loss`` may end in NaN/Inf where training stopped at a non-finite loss;
    ``nonfinite`` says training stopped for that reason. ``running_loss`` is the
    mean of the epoch's mini-batch losses (NaN at epoch 0); ``step_losses`` the
    recorded (step, mini-batch loss) pairs, when the sweep records them.
    """

    loss: FloatArray
    accuracy: FloatArray | None = None
    val_loss: FloatArray | None = None
    val_accuracy: FloatArray | None = None
    nonfinite: bool = False
    running_loss: FloatArray | None = None
    step_losses: Sequence[Sequence[float]] | None = None

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], *, nonfinite: bool = False) -> RunCurve:
        """From per-epoch dicts (keys loss, accuracy, val_loss, val_accuracy; None = missing).

        Records are ordered by their ``epoch`` key when they have one. A column
        that is missing in every record becomes None.
        """
        if records and all("epoch" in r for r in records):
            records = sorted(records, key=lambda r: int(r["epoch"]))

        def column(key: str) -> FloatArray | None:
            vals = [r.get(key) for r in records]
            if all(v is None for v in vals):
                return None
            return np.array([math.nan if v is None else float(v) for v in vals], dtype=np.float64)

        loss = column("loss")
        if loss is None:
            raise ValueError("every record lacks a loss")
        return cls(
            loss,
            column("accuracy"),
            column("val_loss"),
            column("val_accuracy"),
            nonfinite,
            running_loss=column("running_loss"),
        )


@dataclass(frozen=True)
class RunVerdict:
    run_class: str
    flags: tuple[str, ...]
    metrics: dict[str, Metric] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"run_class": self.run_class, "flags": list(self.flags), "metrics": dict(self.metrics)}


def label_prior(y: npt.ArrayLike) -> tuple[float, float]:
    """(entropy of the label prior in nats, majority-class accuracy) of labels ``y``.

    ``y`` is one-hot (or soft) with shape (n, C), or integer class ids of shape
    (n,) or (n, 1). The entropy is the loss of the best constant predictor,
    i.e. the cross-entropy "chance" level; ln C for balanced classes.
    """
    arr = np.asarray(y)
    if arr.size == 0:
        raise ValueError("no labels")
    if arr.ndim == 2 and arr.shape[1] > 1:
        counts = arr.astype(np.float64).sum(axis=0)
    else:
        ids = arr.reshape(-1)
        if not np.issubdtype(ids.dtype, np.integer):
            if not np.all(np.equal(np.mod(ids, 1), 0)):
                raise ValueError("labels must be integer class ids or one-hot rows")
            ids = ids.astype(np.int64)
        if ids.min() < 0:
            raise ValueError("class ids must be non-negative")
        counts = np.bincount(ids).astype(np.float64)
    p = counts / counts.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum()) + 0.0, float(p.max())


def classify_run(
    curve: RunCurve,
    *,
    num_classes: int,
    majority_accuracy: float | None,
    thresholds: Thresholds,
    l_chance: float | None = None,
) -> RunVerdict:
    """Class, flags and metrics of one run (rules in the module docstring).

    ``num_classes == 0`` means regression: no accuracy rule, the target is
    ``L_end <= target_loss_frac * l0`` and ``l_chance`` (optional) is the
    constant predictor's loss. For classifiers ``l_chance`` defaults
    to ln(num_classes); pass the label-prior entropy (``label_prior``) when
    classes are unbalanced. ``majority_accuracy`` defaults to 1/num_classes.
    """
    th = thresholds
    if num_classes < 0:
        raise ValueError("num_classes must be >= 0 (0 for regression)")
    loss = np.asarray(curve.loss, dtype=np.float64).reshape(-1)
    if loss.size == 0:
        raise ValueError("empty loss curve: record the loss at initialisation (epoch 0) at least")
    if num_classes > 0:
        if l_chance is None:
            l_chance = math.log(num_classes) if num_classes > 1 else None
        if majority_accuracy is None:
            majority_accuracy = 1.0 / num_classes
    else:
        # Regression: l_chance, when given, is the loss of the best constant prediction.
        majority_accuracy = None

    finite = np.isfinite(loss)
    nonfinite = curve.nonfinite or not bool(finite.all())
    # Metrics use the finite prefix: whatever follows a NaN is not training.
    n_ok = int(np.argmin(finite)) if not finite.all() else loss.size
    lf = loss[:n_ok]
    m: dict[str, Metric] = {
        "l0": None,
        "l_chance": _f(l_chance),
        "L_min": None,
        "t_min": None,
        "L_end": None,
        "T": loss.size - 1,
        "rebound": None,
        "max_smoothed_ratio": None,
        "late_increase_frac": None,
        "late_detrended_std": None,
        "late_log_slope": None,
        "final_accuracy": None,
        "majority_accuracy": _f(majority_accuracy),
        "target_reached": None,
        "epochs_to_target": None,
        "val_rebound": None,
    }
    flags: list[str] = []
    acc = _prefix(curve.accuracy, n_ok)
    if acc is not None:
        m["final_accuracy"] = _end_mean(acc, th.end_window)
        m["epochs_to_target"] = _first_at_least(acc, th.target_accuracy)
    if n_ok == 0:
        return RunVerdict(DIVERGED, (FLAG_NONFINITE,), m)

    l0 = float(lf[0])
    # Work on loss / l0 so that every rule is a ratio (module docstring).
    scale = l0 if l0 > 0 else 1.0
    u = lf / scale
    u0 = float(u[0])
    t_min = int(np.argmin(u))
    u_min = float(u[t_min])
    u_end = _end_mean(u, th.end_window)
    T = n_ok - 1
    span = u0 - u_min
    rebound = (u_end - u_min) / span if span > 0 else None
    m.update(
        l0=l0,
        L_min=u_min * scale,
        t_min=t_min,
        L_end=u_end * scale,
        rebound=rebound,
    )
    m.update(
        fluctuation_metrics(
            lf,
            running_loss=_prefix_with_gaps(curve.running_loss, n_ok),
            step_losses=curve.step_losses,
            spike_factor=th.spike_factor,
            spike_min_rise_frac=th.spike_min_rise_frac,
        )
    )
    ratio, climbed = _smoothed_excess(
        u, th.smoothing_window, th.divergence_factor, th.divergence_min_rise_frac
    )
    m["max_smoothed_ratio"] = ratio
    late = _late_stats(u, span, T, th)
    m.update(late)
    if late["late_detrended_std"] is not None:
        m["late_detrended_std"] = late["late_detrended_std"] * scale
    reached = _target_reached(m["final_accuracy"], u_end, num_classes, acc is not None, th)
    m["target_reached"] = reached
    if acc is None and num_classes == 0:
        m["epochs_to_target"] = _first_at_most(u, th.target_loss_frac * u0)
    val_r = _val_rebound(curve.val_loss, n_ok, th)
    m["val_rebound"] = val_r

    if rebound is not None and rebound > th.regressing:
        flags.append(FLAG_REGRESSING)
    if val_r is not None and val_r > th.regressing and (rebound is None or rebound <= th.regressing):
        flags.append(FLAG_OVERFITTING)
    if m["spikes"]:
        flags.append(FLAG_SPIKES)

    # Rule 1.
    if nonfinite:
        return RunVerdict(DIVERGED, tuple(flags) + (FLAG_NONFINITE,), m)
    if climbed or u_end >= u0:
        return RunVerdict(DIVERGED, tuple(flags), m)
    # Rule 2.
    assert rebound is not None  # span > 0 since u_end < u0 and u_min <= u_end
    if rebound > th.rebound_rises and t_min < th.rebound_tmin_frac * T:
        return RunVerdict(RISES_AFTER_MIN, tuple(f for f in flags if f != FLAG_REGRESSING), m)
    # Rule 3.
    if (num_classes > 0 or l_chance is not None) and _stuck(
        m["final_accuracy"], majority_accuracy, u_end, u_min, l_chance, scale, th
    ):
        return RunVerdict(STUCK_AT_CHANCE, tuple(flags), m)
    # Rule 4.
    inc, std = late["late_increase_frac"], late["late_detrended_std"]
    if (inc is not None and inc > th.noisy_increase_frac) or (
        std is not None and std > th.noisy_std_frac * span
    ):
        return RunVerdict(NOISY, tuple(flags), m)
    # Rule 5, and its plateau completion (module docstring).
    if not reached:
        slope = late["late_log_slope"]
        if slope is None or slope > th.slow_log_slope:
            flags.append(FLAG_PLATEAUED)
        return RunVerdict(SLOW, tuple(flags), m)
    # Rule 6, and its completion: reached but gave back too much -> noisy.
    if rebound <= th.converged_rebound:
        return RunVerdict(CONVERGED, tuple(flags), m)
    if FLAG_REGRESSING not in flags:
        flags.append(FLAG_REGRESSING)
    return RunVerdict(NOISY, tuple(flags), m)


def _f(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _prefix(arr: FloatArray | None, n: int) -> FloatArray | None:
    if arr is None:
        return None
    a = np.asarray(arr, dtype=np.float64).reshape(-1)[:n]
    a = a[np.isfinite(a)]
    return a if a.size else None


def _prefix_with_gaps(arr: FloatArray | None, n: int) -> FloatArray | None:
    """The first ``n`` values, NaN kept (the running loss has none at epoch 0)."""
    return None if arr is None else np.asarray(arr, dtype=np.float64).reshape(-1)[:n]


def _end_mean(a: FloatArray, window: int) -> float:
    return float(np.mean(a[-window:]))


def _first_at_least(a: FloatArray, target: float) -> int | None:
    hits = np.flatnonzero(a >= target)
    return int(hits[0]) if hits.size else None


def _first_at_most(a: FloatArray, target: float) -> int | None:
    hits = np.flatnonzero(a <= target)
    return int(hits[0]) if hits.size else None


def _smoothed_excess(u: FloatArray, window: int, factor: float, min_rise: float) -> tuple[float, bool]:
    """Max ratio of the trailing-mean loss to its best so far, and whether rule 1 fires at the end."""
    c = np.concatenate(([0.0], np.cumsum(u)))
    idx = np.arange(1, u.size + 1)
    start = np.maximum(idx - window, 0)
    smooth = (c[idx] - c[start]) / (idx - start)
    best = np.minimum.accumulate(smooth)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best > 0, smooth / best, 1.0)
    # The guard: the rise must also undo a share of the progress made so far.
    # Only the end counts: a run whose smoothed loss came back down recovered.
    end, low = float(smooth[-1]), float(best[-1])
    fires = end > factor * low and end - low > min_rise * (u[0] - low)
    return float(ratio.max()), bool(fires)


def _late_stats(u: FloatArray, span: float, T: int, th: Thresholds) -> dict[str, float | None]:
    w = max(th.late_window_min, math.ceil(th.late_window_frac * T))
    out: dict[str, float | None] = {
        "late_increase_frac": None,
        "late_detrended_std": None,
        "late_log_slope": None,
    }
    if T < 2 or w > T:
        return out
    window = u[-w:]
    steps = np.diff(u[-w - 1 :])
    out["late_increase_frac"] = float(np.mean(steps > th.noisy_increase_min_frac * span))
    t = np.arange(w, dtype=np.float64)
    tc = t - t.mean()
    denom = float((tc * tc).sum())
    slope = float((tc * (window - window.mean())).sum()) / denom
    resid = window - window.mean() - slope * tc
    out["late_detrended_std"] = float(np.sqrt(np.mean(resid * resid)))
    logw = np.log(np.maximum(window, np.finfo(np.float64).tiny))
    out["late_log_slope"] = float((tc * (logw - logw.mean())).sum()) / denom * T
    return out


def _target_reached(final_acc: Metric, u_end: float, num_classes: int, has_acc: bool, th: Thresholds) -> bool:
    if num_classes > 0 and has_acc and isinstance(final_acc, float):
        return final_acc >= th.target_accuracy
    return u_end <= th.target_loss_frac  # u is loss / l0


def _stuck(
    final_acc: Metric,
    majority: float | None,
    u_end: float,
    u_min: float,
    l_chance: float | None,
    scale: float,
    th: Thresholds,
) -> bool:
    if isinstance(final_acc, float) and majority is not None and final_acc <= majority:
        return True
    if l_chance is None or l_chance <= 0:
        return False
    c = l_chance / scale
    return abs(u_end - c) <= th.chance_band * c and u_min >= th.chance_floor * c


def _val_rebound(val: FloatArray | None, n: int, th: Thresholds) -> float | None:
    if val is None:
        return None
    v = np.asarray(val, dtype=np.float64).reshape(-1)[:n]
    v = v[np.isfinite(v)]
    if v.size < 3:
        return None
    t_min = int(np.argmin(v))
    span = float(v[0] - v[t_min])
    if span <= 0 or t_min >= th.rebound_tmin_frac * (v.size - 1):
        return None
    return (_end_mean(v, th.end_window) - float(v[t_min])) / span
