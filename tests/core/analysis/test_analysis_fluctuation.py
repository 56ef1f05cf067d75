"""Per-run fluctuation measures on synthetic curves whose noise level is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.core.analysis.fluctuation import (
    FLUCTUATION_KEYS,
    Spike,
    find_spikes,
    fluctuation_index,
    fluctuation_metrics,
    jump_factor,
    step_loss_stats,
)


def noisy_curve(sigma: float, seed: int, n: int = 2001, trend: str = "exp") -> np.ndarray:
    """ln L_t = trend(t) + sigma * e_t with e_t standard normal: the index should recover sigma."""
    t = np.arange(n, dtype=float)
    rng = np.random.default_rng(seed)
    if trend == "exp":
        log_trend = np.log(0.05 + 2.0 * np.exp(-t / 300.0))
    elif trend == "power":
        log_trend = np.log(2.0 / np.sqrt(1.0 + t))
    else:
        log_trend = np.full(n, math.log(0.7))
    return np.exp(log_trend + sigma * rng.standard_normal(n))


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.5])
@pytest.mark.parametrize("trend", ["exp", "power", "flat"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_index_recovers_known_noise_within_ten_percent(sigma: float, trend: str, seed: int) -> None:
    got = fluctuation_index(noisy_curve(sigma, seed, trend=trend))
    assert got is not None
    assert got == pytest.approx(sigma, rel=0.10)


def test_index_is_unit_free_and_zero_for_a_smooth_curve() -> None:
    curve = noisy_curve(0.1, 3)
    assert fluctuation_index(7.5 * curve) == pytest.approx(fluctuation_index(curve))
    t = np.arange(200, dtype=float)
    assert fluctuation_index(2.0 * np.exp(-t / 30.0)) == pytest.approx(0.0, abs=1e-12)


def test_index_ignores_a_single_spike_that_a_std_would_not() -> None:
    curve = noisy_curve(0.05, 4, n=401)
    spiked = curve.copy()
    spiked[300] *= 50.0
    assert fluctuation_index(spiked) == pytest.approx(fluctuation_index(curve), rel=0.05)


def test_index_needs_a_late_window_and_stops_at_nonfinite() -> None:
    assert fluctuation_index([2.0, 1.0, 0.5]) is None
    assert fluctuation_index([]) is None
    loss = list(noisy_curve(0.1, 5, n=101)) + [math.nan, 5.0]
    assert fluctuation_index(loss) == fluctuation_index(loss[:101])


def test_jump_factor_of_an_alternating_curve() -> None:
    # ln L alternates +-a around a flat trend: every |d - median d| is 2a.
    a = 0.3
    loss = [math.exp(a if t % 2 else -a) for t in range(41)]
    assert jump_factor(loss) == pytest.approx(math.exp(2 * a))


def test_spikes_counted_exactly_on_hand_built_curves() -> None:
    #        0    1    2    3    4    5    6    7    8     9   10   11
    loss = [2.0, 1.0, 0.8, 2.4, 1.0, 0.7, 0.6, 0.6, 3.0, 6.0, 0.5, 0.4]
    assert find_spikes(loss) == [
        Spike(start=3, size=pytest.approx(3.0), recovered_at=5),
        Spike(start=8, size=pytest.approx(10.0), recovered_at=10),
    ]
    m = fluctuation_metrics(loss)
    assert m["spikes"] == 2 and m["largest_spike"] == pytest.approx(10.0)
    assert m["unrecovered_spike"] is None


def test_spike_needs_the_factor_and_an_unrecovered_one_is_apart() -> None:
    assert find_spikes([2.0, 1.0, 1.9, 0.9, 0.5]) == []  # 1.9x < 2x
    assert len(find_spikes([2.0, 1.0, 2.1, 0.9, 0.5])) == 1
    m = fluctuation_metrics([2.0, 1.0, 0.5, 0.4, 1.2, 1.5])
    assert m["spikes"] == 0 and m["largest_spike"] is None
    assert m["unrecovered_spike"] == pytest.approx(1.5 / 0.4)


def test_jitter_near_zero_is_no_spike() -> None:
    # 1e-4 -> 3e-4 is 3x, but 1e-4 of a 2.0 drop: below spike_min_rise_frac of l0 - L_min.
    loss = [2.0, 0.5, 1e-3, 1e-4, 3e-4, 1e-4, 1e-4]
    assert find_spikes(loss) == []
    assert len(find_spikes(loss, min_rise_frac=0.0)) == 1


def test_running_mean_index_and_step_variance() -> None:
    loss = noisy_curve(0.2, 6, n=401)
    running = [None] + list(noisy_curve(0.05, 7, n=401)[1:])
    m = fluctuation_metrics(loss, running_loss=running)
    assert set(m) == set(FLUCTUATION_KEYS)
    assert m["fluctuation"] == pytest.approx(0.2, rel=0.2)
    assert m["running_fluctuation"] == pytest.approx(0.05, rel=0.2)
    assert m["step_loss_var"] is None and m["step_log_std"] is None
    rng = np.random.default_rng(8)
    steps = [(s, 1.0 - 0.0001 * s + 0.1 * float(rng.standard_normal())) for s in range(2000)]
    var, log_std = step_loss_stats(steps)
    assert var == pytest.approx(0.01, rel=0.1)  # the linear decline is not variance
    assert log_std is not None and log_std > 0
    assert step_loss_stats([(0, 1.0), (1, 2.0)]) == (None, None)


def test_min_epochs_is_the_shortest_run_with_an_index() -> None:
    """The report tells a user how many epochs give a fluctuation index; that number must be true."""
    from service.core.analysis.fluctuation import MIN_EPOCHS

    noisy = np.exp(-np.linspace(0, 1, 40) + 0.1 * np.random.default_rng(0).standard_normal(40))
    assert fluctuation_index(noisy[: MIN_EPOCHS + 1]) is not None  # epoch 0 plus MIN_EPOCHS epochs
    assert fluctuation_index(noisy[:MIN_EPOCHS]) is None
