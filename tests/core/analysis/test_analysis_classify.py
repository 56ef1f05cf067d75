"""classify_run: one hand-built curve per class and per boundary between two classes."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.core.analysis.classify import RunCurve, RunVerdict, classify_run, label_prior
from service.core.analysis.thresholds import (
    CONVERGED,
    DIVERGED,
    NOISY,
    RISES_AFTER_MIN,
    RUN_CLASSES,
    SLOW,
    STUCK_AT_CHANCE,
    Thresholds,
)

TH = Thresholds()
T = 40  # epochs; late window = last 10, end window = last 3


def verdict(
    loss: list[float] | np.ndarray,
    acc: list[float] | np.ndarray | None = None,
    *,
    num_classes: int = 6,
    th: Thresholds = TH,
    majority: float | None = None,
    l_chance: float | None = None,
    val_loss: np.ndarray | None = None,
    nonfinite: bool = False,
) -> RunVerdict:
    a = None if acc is None else np.asarray(acc, dtype=float)
    curve = RunCurve(np.asarray(loss, dtype=float), a, val_loss, None, nonfinite)
    return classify_run(
        curve, num_classes=num_classes, majority_accuracy=majority, thresholds=th, l_chance=l_chance
    )


def decay(l0: float = 2.0, floor: float = 0.05, tau: float = 4.0, n: int = T) -> np.ndarray:
    t = np.arange(n + 1, dtype=float)
    return floor + (l0 - floor) * np.exp(-t / tau)


def acc_ramp(final: float = 1.0, n: int = T) -> np.ndarray:
    return np.minimum(final, np.linspace(1 / 6, final * 1.5, n + 1))


def plateau_after(m: float, t_min: int, e: float, l0: float = 2.0, n: int = T) -> np.ndarray:
    """Linear decline from l0 to m at t_min, then e for every later epoch."""
    head = np.linspace(l0, m, t_min + 1)
    return np.concatenate([head, np.full(n - t_min, e)])


# ---- one curve per class -------------------------------------------------------------


def test_converged() -> None:
    v = verdict(decay(), acc_ramp())
    assert v.run_class == CONVERGED and v.flags == ()
    assert v.metrics["target_reached"] is True
    assert v.metrics["T"] == T and v.metrics["t_min"] == T
    assert v.metrics["l0"] == pytest.approx(2.0)


def test_diverged_nonfinite_loss_and_flag() -> None:
    loss = np.concatenate([decay()[:10], [math.inf, math.nan]])
    v = verdict(loss, None)
    assert v.run_class == DIVERGED and "nonfinite" in v.flags
    assert v.metrics["L_min"] == pytest.approx(float(decay()[9]))  # metrics from the finite prefix
    assert verdict(decay(), acc_ramp(), nonfinite=True).run_class == DIVERGED
    assert verdict([math.nan], None).run_class == DIVERGED


def test_diverged_end_at_or_above_l0() -> None:
    assert verdict(np.linspace(2.0, 2.5, T + 1), acc_ramp()).run_class == DIVERGED
    at_l0 = plateau_after(1.0, 10, 2.0)
    assert verdict(at_l0, acc_ramp()).run_class == DIVERGED
    just_below = plateau_after(1.0, 10, 1.999)
    assert verdict(just_below, acc_ramp()).run_class == RISES_AFTER_MIN


def spike(height: float) -> np.ndarray:
    """Flat at 0.2 for epochs 5-9, three epochs at `height`, then 0.15: min at the end."""
    loss = np.concatenate([np.linspace(2.0, 0.2, 6), [0.2] * 4, [height] * 3, [0.15] * (T - 12)])
    assert loss.size == T + 1
    return loss


def spike_at_end(height: float) -> np.ndarray:
    """Flat at 0.2 from epoch 5, then the last three epochs at `height`: no recovery."""
    loss = np.concatenate([np.linspace(2.0, 0.2, 6), [0.2] * (T - 8), [height] * 3])
    assert loss.size == T + 1
    return loss


def test_diverged_four_x_rule_boundary() -> None:
    # Issue 13 moved the rule to the end of the run: the smoothed loss must still be 4x its best.
    bare = TH.with_overrides({"divergence_min_rise_frac": 0.0})
    assert verdict(spike_at_end(0.81), acc_ramp(), th=bare).run_class == DIVERGED
    assert verdict(spike_at_end(0.79), acc_ramp(), th=bare).run_class != DIVERGED


def test_diverged_rise_guard_boundary() -> None:
    # 4x is exceeded either way; the rise must also undo half of l0 - best = 0.9.
    assert verdict(spike_at_end(1.11), acc_ramp()).run_class == DIVERGED
    assert verdict(spike_at_end(1.09), acc_ramp()).run_class != DIVERGED


@pytest.mark.parametrize("height", [0.81, 1.11, 5.0])
def test_recovered_spike_is_a_flag_not_divergence(height: float) -> None:
    # Before issue 13 a 4x spike anywhere made the run "diverged"; it came back to 0.15 < 0.2.
    v = verdict(spike(height), acc_ramp())
    assert v.run_class == CONVERGED and v.flags == ("spikes",)
    assert v.metrics["spikes"] == 1
    assert v.metrics["largest_spike"] == pytest.approx(height / 0.2)
    assert v.metrics["max_smoothed_ratio"] > 4.0  # the old rule's evidence is still reported


def test_rises_after_min_rebound_boundary() -> None:
    # l0 = 2, L_min = 0.5 at epoch 10: R = (e - 0.5) / 1.5; never 4x the minimum.
    assert verdict(plateau_after(0.5, 10, 0.5 + 0.51 * 1.5), acc_ramp()).run_class == RISES_AFTER_MIN
    below = verdict(plateau_after(0.5, 10, 0.5 + 0.49 * 1.5), acc_ramp())
    assert below.run_class == NOISY and "regressing" in below.flags


def test_rises_after_min_t_min_boundary() -> None:
    e = 0.5 + 0.8 * 1.5
    assert verdict(plateau_after(0.5, 31, e), acc_ramp()).run_class == RISES_AFTER_MIN
    late = verdict(plateau_after(0.5, 32, e), acc_ramp())  # t_min = 0.8 T: not rule 2
    assert late.run_class == NOISY and "regressing" in late.flags


def test_regressing_flag_between_converged_and_noisy() -> None:
    ok = verdict(plateau_after(0.5, 20, 0.5 + 0.09 * 1.5), acc_ramp())
    assert ok.run_class == CONVERGED and ok.flags == ()
    gave_back = verdict(plateau_after(0.5, 20, 0.5 + 0.11 * 1.5), acc_ramp())
    assert gave_back.run_class == NOISY and gave_back.flags == ("regressing",)


def test_stuck_at_chance_by_accuracy_boundary() -> None:
    loss = decay(l0=math.log(2), floor=0.6)
    assert verdict(loss, np.full(T + 1, 0.5), num_classes=2).run_class == STUCK_AT_CHANCE
    v = verdict(loss, np.full(T + 1, 0.51), num_classes=2)
    assert v.run_class == SLOW and "plateaued" in v.flags  # loss 0.6 < 0.9 ln 2: not at chance
    # The caller's majority-class accuracy replaces 1/C.
    assert verdict(loss, np.full(T + 1, 0.7), num_classes=2, majority=0.75).run_class == STUCK_AT_CHANCE


def test_stuck_at_chance_by_loss_band_and_floor() -> None:
    # Report 3: three softmax outputs for two classes, l0 ~ ln 3, chance = ln 2.
    lc = math.log(2)
    acc = np.full(T + 1, 0.6)

    def run(end: float, low: float) -> str:
        loss = np.concatenate([np.linspace(math.log(3), low, 6), np.full(T - 5, end)])
        return verdict(loss, acc, num_classes=3, l_chance=lc).run_class

    assert run(1.049 * lc, 1.049 * lc) == STUCK_AT_CHANCE
    assert run(1.051 * lc, 1.051 * lc) == SLOW
    assert run(0.951 * lc, 0.901 * lc) == STUCK_AT_CHANCE
    assert run(0.951 * lc, 0.899 * lc) == SLOW  # it once went below 0.9 l_chance


def test_regression_without_a_constant_predictor_loss_skips_the_chance_rule() -> None:
    loss = plateau_after(0.95, 5, 0.95, l0=1.0)  # would be "at chance" if ln(C) were ~0.95
    v = verdict(loss, None, num_classes=0)
    assert v.run_class == SLOW and v.metrics["l_chance"] is None


def test_regression_stuck_at_the_constant_predictors_loss() -> None:
    # Targets of variance 1 (the MSE of predicting their mean); the model starts at MSE 3.
    var = 1.0

    def run(end: float, low: float) -> RunVerdict:
        loss = np.concatenate([np.linspace(3.0, low, 6), np.full(T - 5, end)])
        return verdict(loss, None, num_classes=0, l_chance=var)

    stuck = run(1.02 * var, 1.0 * var)
    assert stuck.run_class == STUCK_AT_CHANCE and stuck.metrics["l_chance"] == var
    assert stuck.metrics["majority_accuracy"] is None
    assert run(0.3 * var, 0.3 * var).run_class != STUCK_AT_CHANCE  # it learned from the inputs
    assert run(1.02 * var, 0.85 * var).run_class != STUCK_AT_CHANCE  # once well below the constant


def zigzag(increases: int, w: int = 10, up: float = 0.05) -> np.ndarray:
    """A converged-looking curve whose last w steps contain `increases` small rises."""
    head = decay(floor=0.3, n=T - w)
    steps = [up if i < increases else -up * 0.5 for i in range(w)]
    steps = steps[::2] + steps[1::2]  # spread the rises out
    return np.concatenate([head, head[-1] + np.cumsum(steps)])


def test_noisy_increase_fraction_boundary() -> None:
    v = verdict(zigzag(5), acc_ramp())
    assert v.run_class == NOISY and v.metrics["late_increase_frac"] == pytest.approx(0.5)
    w = verdict(zigzag(4), acc_ramp())
    assert w.metrics["late_increase_frac"] == pytest.approx(0.4)
    assert w.run_class == CONVERGED


def test_noisy_increase_ignores_jitter_below_min_step() -> None:
    # Rises of 1e-4 are below 1% of l0 - L_min: a fitted loss jittering is not noise.
    assert verdict(zigzag(8, up=1e-4), acc_ramp()).run_class == CONVERGED


def test_noisy_detrended_std_boundary() -> None:
    loss = decay(floor=0.3)
    loss[-10:] += np.array([0, 1, 0, -1, 0, 1, 0, -1, 0, 0]) * 0.02
    base = verdict(loss, acc_ramp())
    std = base.metrics["late_detrended_std"]
    span = base.metrics["l0"] - base.metrics["L_min"]  # type: ignore[operator]
    assert isinstance(std, float) and std > 0
    frac = std / span
    above = TH.with_overrides({"noisy_std_frac": frac * 0.999, "noisy_increase_frac": 1.0})
    below = TH.with_overrides({"noisy_std_frac": frac * 1.001, "noisy_increase_frac": 1.0})
    assert verdict(loss, acc_ramp(), th=above).run_class == NOISY
    assert verdict(loss, acc_ramp(), th=below).run_class == CONVERGED


def test_slow_slope_boundary() -> None:
    t = np.arange(T + 1, dtype=float)
    acc = np.full(T + 1, 0.6)
    fast = verdict(2.0 * np.exp(-0.51 / T * t), acc)
    assert fast.run_class == SLOW and fast.flags == ()
    assert fast.metrics["late_log_slope"] == pytest.approx(-0.51)
    flat = verdict(2.0 * np.exp(-0.49 / T * t), acc)
    assert flat.run_class == SLOW and flat.flags == ("plateaued",)


def test_converged_versus_slow_at_target_accuracy() -> None:
    assert verdict(decay(), acc_ramp(0.9)).run_class == CONVERGED
    assert verdict(decay(), acc_ramp(0.8999)).run_class == SLOW


def test_regression_target_is_a_fraction_of_l0() -> None:
    assert verdict(plateau_after(0.099, 10, 0.099, l0=1.0), num_classes=0).run_class == CONVERGED
    assert verdict(plateau_after(0.101, 10, 0.101, l0=1.0), num_classes=0).run_class == SLOW
    v = verdict(plateau_after(0.099, 10, 0.099, l0=1.0), num_classes=0)
    assert v.metrics["epochs_to_target"] == 10


def test_classifier_without_accuracy_uses_loss_target() -> None:
    assert verdict(decay(floor=0.05), None).run_class == CONVERGED


def test_overfitting_flag() -> None:
    val = plateau_after(0.6, 10, 1.2)
    v = verdict(decay(), acc_ramp(), val_loss=val)
    assert v.run_class == CONVERGED and v.flags == ("overfitting",)
    assert verdict(decay(), acc_ramp(), val_loss=decay()).flags == ()


def test_epochs_to_target_and_metrics_keys() -> None:
    acc = np.concatenate([np.linspace(0.2, 0.95, 21), np.full(T - 20, 0.95)])
    m = verdict(decay(), acc).metrics
    assert m["epochs_to_target"] == int(np.flatnonzero(acc >= 0.9)[0])
    for key in (
        "l0 l_chance L_min t_min L_end T rebound late_increase_frac late_detrended_std late_log_slope "
        "final_accuracy majority_accuracy target_reached epochs_to_target"
    ).split():
        assert key in m
    assert m["l_chance"] == pytest.approx(math.log(6)) and m["majority_accuracy"] == pytest.approx(1 / 6)


def test_short_curves_get_a_class() -> None:
    assert verdict([2.0], None).run_class == DIVERGED  # nothing learned
    assert verdict([2.0, 0.1], [0.1, 1.0]).run_class in RUN_CLASSES
    with pytest.raises(ValueError):
        verdict([], None)


def test_from_records_orders_epochs_and_maps_none() -> None:
    recs = [
        {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": None},
        {"epoch": 0, "loss": 2.0, "accuracy": None, "val_loss": None},
    ]
    c = RunCurve.from_records(recs)
    assert c.loss.tolist() == [2.0, 1.0] and c.val_loss is None
    assert c.accuracy is not None and math.isnan(c.accuracy[0])


# ---- label prior -----------------------------------------------------------------------


def test_label_prior_one_hot_and_ids() -> None:
    ids = np.array([0, 0, 0, 1])
    h, maj = label_prior(ids)
    assert h == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert maj == 0.75
    assert label_prior(np.eye(3)[ids]) == pytest.approx((h, maj))  # a never-seen third class adds 0
    assert label_prior(np.repeat(np.arange(6), 5)) == pytest.approx((math.log(6), 1 / 6))
    with pytest.raises(ValueError):
        label_prior(np.array([0.5, 1.2]))


# ---- properties --------------------------------------------------------------------------

random_losses = st.lists(st.floats(1e-3, 10.0), min_size=1, max_size=60).map(np.array)


@st.composite
def shaped_losses(draw: st.DrawFn) -> np.ndarray:
    """Decaying curves with noise and an optional late rise: every class shows up."""
    n = draw(st.integers(1, 60))
    t = np.arange(n + 1, dtype=float)
    l0 = draw(st.floats(0.1, 10.0))
    floor = draw(st.floats(0.0, 0.6))
    tau = draw(st.floats(0.5, 30.0))
    noise = draw(st.lists(st.floats(-1, 1), min_size=n + 1, max_size=n + 1))
    amp = draw(st.sampled_from([0.0, 0.0, 0.01, 0.1, 0.5]))
    rise_at = draw(st.integers(0, n))
    rise = draw(st.sampled_from([0.0, 0.0, 0.3, 3.0]))
    curve = floor + (1 - floor) * np.exp(-t / tau)
    curve = curve * (1 + amp * np.array(noise)) + rise * (t >= rise_at) * (t > 0)
    return np.asarray(l0 * np.maximum(curve, 1e-4), dtype=float)


losses = st.one_of(random_losses, shaped_losses())


@st.composite
def runs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None, int]:
    loss = draw(losses)
    num_classes = draw(st.sampled_from([0, 2, 6]))
    acc = None
    if num_classes and draw(st.booleans()):
        acc = np.array(draw(st.lists(st.floats(0, 1), min_size=loss.size, max_size=loss.size)))
    return loss, acc, num_classes


def _classify(loss: np.ndarray, acc: np.ndarray | None, c: int, lc: float | None = None) -> RunVerdict:
    return classify_run(
        RunCurve(loss, acc), num_classes=c, majority_accuracy=None, thresholds=TH, l_chance=lc
    )


@settings(max_examples=150, deadline=None)
@given(runs(), st.integers(-20, 20))
def test_class_invariant_to_loss_units(run: tuple[np.ndarray, np.ndarray | None, int], k: int) -> None:
    """Scaling loss and l_chance by 2**k (exact in floating point) changes nothing."""
    loss, acc, c = run
    lc = math.log(c) if c else None
    a = _classify(loss, acc, c, lc)
    b = _classify(loss * 2.0**k, acc, c, None if lc is None else lc * 2.0**k)
    assert (a.run_class, a.flags) == (b.run_class, b.flags)


@settings(max_examples=150, deadline=None)
@given(runs())
def test_exactly_one_class_deterministic_json_safe(run: tuple[np.ndarray, np.ndarray | None, int]) -> None:
    loss, acc, c = run
    a = _classify(loss, acc, c)
    assert a.run_class in RUN_CLASSES
    assert a == _classify(loss.copy(), None if acc is None else acc.copy(), c)
    json.dumps(a.to_dict(), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        lambda n, l0, floor, tau, noise: (
            l0
            * (floor + (1 - floor) * np.exp(-np.arange(n + 1) / tau))
            * (1 + noise * np.cos(np.arange(n + 1) * 2.5))
        ),
        st.integers(3, 60),
        st.floats(0.1, 10.0),
        st.floats(0.0, 0.09),
        st.floats(0.5, 15.0),
        st.sampled_from([0.0, 0.005, 0.05]),
    ),
    st.integers(0, 40),
)
def test_converged_run_that_stays_at_its_best_stays_converged(loss: np.ndarray, extra: int) -> None:
    assume(_classify(loss, None, 0).run_class == CONVERGED)
    T0 = loss.size - 1
    tail = max(T0 // 3 + 5, 5) + extra  # long enough to fill the late window
    longer = np.concatenate([loss, np.full(tail, loss.min())])
    assert _classify(longer, None, 0).run_class == CONVERGED
