"""Classes of closed-form dynamics: quadratics under gradient descent and heavy-ball momentum.

On f(x) = 1/2 sum_i lam_i x_i^2, gradient descent is stable for lr < 2/lam_max
and heavy-ball momentum m for lr < 2(1+m)/lam_max (Cohen et al. 2021; 2022).
Just below its limit, heavy ball's loss swings up and down by an order of
magnitude while its envelope shrinks: a converging run, not a diverged one.
At the limit the top direction keeps its amplitude (GD) or ends larger than
it started (heavy ball, the root -1 of z^2 + (1+m) z + m): nothing learned
along it. Above it, the loss grows without bound. Each "epoch" is one step.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.core.analysis.classify import RunCurve, classify_run
from service.core.analysis.thresholds import CONVERGED, DIVERGED, SLOW, SUCCESS_CLASSES, Thresholds

STEPS = 200


def heavy_ball(lams: list[float], lr: float, m: float, steps: int = STEPS) -> np.ndarray:
    """The loss after every step of v <- m v - lr grad, x <- x + v, from x = 1, v = 0."""
    lam = np.asarray(lams, dtype=float)
    x, v = np.ones_like(lam), np.zeros_like(lam)
    out = [0.5 * float((lam * x * x).sum())]
    for _ in range(steps):
        v = m * v - lr * lam * x
        x = x + v
        out.append(0.5 * float((lam * x * x).sum()))
    return np.array(out)


def run_class(loss: np.ndarray) -> tuple[str, tuple[str, ...], dict[str, object]]:
    v = classify_run(RunCurve(loss), num_classes=0, majority_accuracy=None, thresholds=Thresholds())
    return v.run_class, v.flags, v.metrics


@pytest.mark.parametrize("lams", [[1.0], [1.0, 0.3, 0.1]])
@pytest.mark.parametrize("m", [0.0, 0.9])
def test_below_the_limit_converges(lams: list[float], m: float) -> None:
    for frac in (0.5, 0.95):
        cls, _, _ = run_class(heavy_ball(lams, frac * 2 * (1 + m), m))
        assert cls == CONVERGED, (frac, cls)


@pytest.mark.parametrize("lams", [[1.0], [1.0, 0.3, 0.1]])
def test_heavy_ball_oscillating_near_its_limit_is_not_diverged(lams: list[float]) -> None:
    loss = heavy_ball(lams, 0.95 * 2 * 1.9, 0.9)
    ups = int((np.diff(loss) > 0).sum())
    assert ups > 20 and loss.max() > 5 * loss[0]  # it swings, far above where it started
    cls, flags, metrics = run_class(loss)
    assert cls == CONVERGED and "spikes" in flags
    assert isinstance(metrics["spikes"], int) and metrics["spikes"] >= 3
    assert isinstance(metrics["largest_spike"], float) and metrics["largest_spike"] > 10
    # The fastai 4x rule applied anywhere in the run (the rule before issue 13) would fire.
    assert isinstance(metrics["max_smoothed_ratio"], float) and metrics["max_smoothed_ratio"] > 4


@pytest.mark.parametrize("m", [0.0, 0.9])
def test_at_the_limit_nothing_is_learned_along_the_top_direction(m: float) -> None:
    cls, _, _ = run_class(heavy_ball([1.0], 2 * (1 + m), m))
    assert cls == DIVERGED  # L_end >= l0
    # With other directions the loss falls to the top one's share and stays: not converged.
    cls, flags, _ = run_class(heavy_ball([1.0, 0.3, 0.1], 2 * (1 + m), m))
    if m == 0.0:
        assert cls == SLOW and "plateaued" in flags
    else:
        assert cls == DIVERGED  # heavy ball's top amplitude ends (1+m)/(1-m) times larger
    assert cls not in (CONVERGED,)


@pytest.mark.parametrize("lams", [[1.0], [1.0, 0.3, 0.1]])
@pytest.mark.parametrize("m", [0.0, 0.9])
def test_just_above_the_limit_diverges(lams: list[float], m: float) -> None:
    cls, _, _ = run_class(heavy_ball(lams, 1.05 * 2 * (1 + m), m))
    assert cls == DIVERGED and cls not in SUCCESS_CLASSES
