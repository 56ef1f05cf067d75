"""Fluctuation against batch size and learning rate: fits, bootstrap intervals, which moves it most."""

from __future__ import annotations

import math

import pytest

from service.core.analysis.fluctuation_scaling import (
    fluctuation_effects,
    fluctuation_fits,
    jump_by_value,
)
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config

BATCHES = [2, 8, 32]
LRS = [0.001, 0.01]


def sigma(b: int, lr: float, s: int) -> float:
    return 0.4 * (b / 2) ** -0.5 * (lr / 1e-3) ** 0.1 * (1.0 + 0.05 * (s - 1.5))


def grid(failed_at: tuple[int, float] | None = None) -> list[ConfigPoint]:
    pts = []
    for i, (b, lr) in enumerate((b, lr) for b in BATCHES for lr in LRS):
        runs = [
            RunSummary(
                s,
                s,
                s,
                "diverged" if failed_at == (b, lr) else "noisy",
                fluctuation={"fluctuation": sigma(b, lr, s), "jump_p90": math.exp(2.33 * sigma(b, lr, s))},
            )
            for s in range(4)
        ]
        pts.append(ConfigPoint(i, {"learning_rate": lr, "batch_size": b}, summarize_config(runs)))
    return pts


def test_exponent_against_batch_size_at_each_lr() -> None:
    fits = fluctuation_fits(grid(), "batch_size", n_boot=200)
    assert [f.group for f in fits] == [{"learning_rate": lr} for lr in LRS]
    for f in fits:
        assert f.slope == pytest.approx(-0.5, abs=1e-9)
        assert f.ci is not None and f.ci[0] <= -0.5 <= f.ci[1] and f.ci[1] - f.ci[0] < 0.2
        assert f.expected == -0.5 and f.n_boot_valid == 200
        assert f.change == pytest.approx((32 / 2) ** -0.5)
        assert [p.x for p in f.points] == BATCHES and all(p.n == 4 for p in f.points)
    by_lr = fluctuation_fits(grid(), "learning_rate", n_boot=0)
    assert len(by_lr) == 3 and all(f.slope == pytest.approx(0.1) and f.ci is None for f in by_lr)


def test_batch_size_moves_fluctuation_most() -> None:
    pts = grid()
    effects = fluctuation_effects(
        fluctuation_fits(pts, "batch_size", n_boot=0) + fluctuation_fits(pts, "learning_rate", n_boot=0)
    )
    assert [e.dim for e in effects] == ["batch_size", "learning_rate"]
    assert effects[0].fold == pytest.approx(4.0) and effects[0].change == pytest.approx(0.25)
    assert effects[1].change == pytest.approx(10**0.1)
    assert (effects[0].lo, effects[0].hi) == (2, 32)


def test_failed_seeds_are_left_out_and_single_values_give_no_fit() -> None:
    fits = fluctuation_fits(grid(failed_at=(32, 0.01)), "batch_size", n_boot=0)
    at_01 = next(f for f in fits if f.group == {"learning_rate": 0.01})
    assert [p.x for p in at_01.points] == [2, 8]
    only_one = [p for p in grid() if p.params["batch_size"] == 2]
    assert fluctuation_fits(only_one, "batch_size") == []


def test_jump_by_batch_size() -> None:
    jumps = jump_by_value(grid(), "batch_size")
    assert list(jumps) == BATCHES
    assert jumps[2] > jumps[8] > jumps[32] > 1.0


def test_bootstrap_medians_with_unequal_seed_counts() -> None:
    import numpy as np

    from service.core.analysis.fluctuation_scaling import _boot_medians

    groups = [[np.array([1.0]), np.array([2.0, 4.0]), np.array([5.0, 5.0, 5.0])]]
    boot = _boot_medians(groups, 3, np.random.default_rng(0), 500)
    assert boot.shape == (1, 3, 500)
    assert (boot[0, 0] == 1.0).all() and (boot[0, 2] == 5.0).all()
    assert set(np.unique(boot[0, 1])) == {2.0, 3.0, 4.0}  # {2,2}, {2,4} or {4,4}
    assert abs(float(np.mean(boot[0, 1] == 3.0)) - 0.5) < 0.08
