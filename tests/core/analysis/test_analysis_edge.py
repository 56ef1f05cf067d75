"""Edge of stability, scaling exponent, lr sensitivity, refinement, noise scale."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from service.core.analysis.edge import (
    EdgeResult,
    bracket_width,
    edge_of_stability,
    gradient_noise_scale,
    lr_sensitivity,
    refine_candidates,
)
from service.core.analysis.edge_scaling import scaling_fit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config

OK, DIV, STUCK = "converged", "diverged", "stuck_at_chance"
_ids = iter(range(1, 10**9))


def point(classes: list[str], losses: list[float | None] | None = None, **params: Any) -> ConfigPoint:
    losses = losses or [0.1] * len(classes)
    runs = [
        RunSummary(s, s, 100 + s, c, final_loss=None if c == DIV else loss, l0=2.0)
        for s, (c, loss) in enumerate(zip(classes, losses, strict=True))
    ]
    return ConfigPoint(next(_ids), params, summarize_config(runs))


def column(
    bs: int, outcomes: list[list[str]], lrs: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1), **kw: Any
) -> list[ConfigPoint]:
    return [point(o, learning_rate=lr, batch_size=bs, **kw) for lr, o in zip(lrs, outcomes, strict=True)]


def by_batch(edges: list[EdgeResult]) -> dict[int, EdgeResult]:
    return {int(e.group["batch_size"]): e for e in edges}


def test_bracketed_and_censored_edges() -> None:
    pts = (
        column(8, [[OK] * 3, [OK] * 3, [DIV] * 3, [DIV] * 3])
        + column(32, [[OK] * 3] * 4)
        + column(2, [[STUCK] * 3, [DIV] * 3, [DIV] * 3, [DIV] * 3])
    )
    edges = by_batch(edge_of_stability(pts))
    assert list(by_batch(edge_of_stability(pts))) == [2, 8, 32]  # ordered by batch size
    e8 = edges[8]
    assert e8.censored is None and (e8.lo, e8.hi) == (1e-3, 1e-2)
    assert e8.edge == pytest.approx(math.sqrt(1e-5)) and e8.bracket_width == pytest.approx(9.0)
    e32 = edges[32]
    assert e32.censored == "above" and e32.edge == 1e-1 and e32.lo == 1e-1 and e32.hi is None
    e2 = edges[2]
    assert e2.censored == "below" and e2.edge is None and e2.hi == 1e-4 and e2.best_lr is None
    json.dumps([e.to_dict() for e in edges.values()], allow_nan=False)


def test_stability_needs_half_the_seeds_and_no_divergence() -> None:
    half = [OK, OK, STUCK, STUCK]
    one_div = [OK, OK, OK, DIV]
    edges = by_batch(edge_of_stability(column(8, [[OK] * 4, half, one_div, [OK] * 4])))
    e = edges[8]
    assert [c.stable for c in e.cells] == [True, True, False, True]
    assert (e.lo, e.hi) == (1e-3, 1e-2) and e.stable_again_above


def test_walk_starts_at_the_smallest_stable_lr() -> None:
    # Too-small lrs stuck at chance are not "the edge": the edge is above the first stable lr.
    e = edge_of_stability(column(8, [[STUCK] * 3, [OK] * 3, [OK] * 3, [DIV] * 3]))[0]
    assert (e.lo, e.hi) == (1e-2, 1e-1) and not e.stable_again_above


def test_best_lr_is_lowest_median_loss_among_stable() -> None:
    pts = [
        point([OK] * 3, [0.3, 0.3, 0.3], learning_rate=1e-4, batch_size=8),
        point([OK] * 3, [0.1, 0.2, 0.1], learning_rate=1e-3, batch_size=8),
        point([OK, OK, DIV], [0.01, 0.01, None], learning_rate=1e-2, batch_size=8),
    ]
    e = edge_of_stability(pts)[0]
    assert e.best_lr == 1e-3 and e.best_loss == pytest.approx(0.1)


def test_other_dimensions_split_groups_and_fixed_filters() -> None:
    pts = column(8, [[OK] * 3] * 2 + [[DIV] * 3] * 2, beta_1=0.5) + column(
        8, [[OK] * 3] * 3 + [[DIV] * 3], beta_1=0.9
    )
    edges = edge_of_stability(pts)
    assert [(e.group["beta_1"], e.lo) for e in edges] == [(0.5, 1e-3), (0.9, 1e-2)]
    assert [e.group for e in edge_of_stability(pts, fixed={"beta_1": 0.9})] == [
        {"batch_size": 8, "beta_1": 0.9}
    ]


def test_configs_without_runs_are_skipped() -> None:
    empty = ConfigPoint(999, {"learning_rate": 1e-2, "batch_size": 8}, summarize_config([]))
    e = edge_of_stability([*column(8, [[OK] * 3, [OK] * 3, [DIV] * 3, [DIV] * 3]), empty])[0]
    assert all(999 not in c.config_ids for c in e.cells)


def synthetic_sweep(
    exponent: float, c: float, optimizer: str, rng: np.random.Generator, seeds: int = 4, **kw: Any
) -> list[ConfigPoint]:
    """Stable below lr* = c * B**exponent; one octave above it seeds fail at random."""
    pts = []
    for bs in (4, 8, 16, 32, 64, 128, 256):
        edge = c * bs**exponent
        for lr in np.geomspace(1e-5, 10.0, 49):  # 8 points per decade
            r = lr / edge
            p_fail = 0.0 if r < 1 else (1.0 if r > 2 else 0.7)
            classes = [DIV if rng.random() < p_fail else OK for _ in range(seeds)]
            pts.append(point(classes, learning_rate=float(lr), batch_size=bs, optimizer=optimizer, **kw))
    return pts


def test_scaling_fit_recovers_known_exponents() -> None:
    rng = np.random.default_rng(1)
    pts = synthetic_sweep(0.5, 1e-4, "adam", rng) + synthetic_sweep(1.0, 1e-5, "sgd", rng)
    fits = {f.optimizer: f for f in scaling_fit(edge_of_stability(pts), n_boot=300, seed=0)}
    adam, sgd = fits["adam"], fits["sgd"]
    assert adam.slope == pytest.approx(0.5, abs=0.08) and adam.expected == 0.5
    assert sgd.slope == pytest.approx(1.0, abs=0.08) and sgd.expected == 1.0
    for f in (adam, sgd):
        assert f.ci is not None and f.ci[0] <= f.slope <= f.ci[1]  # type: ignore[operator]
        assert f.ci[1] - f.ci[0] < 0.3 and f.n_boot_valid == 300 and f.n_points == 7
        assert f.best_lr_slope is not None and f.intercept is not None
    json.dumps(adam.to_dict(), allow_nan=False)
    # The bootstrap is reproducible from its seed.
    again = {f.optimizer: f for f in scaling_fit(edge_of_stability(pts), n_boot=300, seed=0)}
    assert again["adam"].ci == adam.ci


def test_scaling_fit_common_slope_across_slices() -> None:
    rng = np.random.default_rng(2)
    pts = synthetic_sweep(0.5, 1e-4, "adam", rng, beta_1=0.9) + synthetic_sweep(
        0.5, 1e-3, "adam", rng, beta_1=0.5
    )
    (fit,) = scaling_fit(edge_of_stability(pts), n_boot=50)
    assert fit.slope == pytest.approx(0.5, abs=0.08) and fit.intercept is None and fit.n_points == 14


def test_scaling_fit_with_too_few_edges() -> None:
    pts = column(8, [[OK] * 3] * 4)  # censored: no usable edge
    (fit,) = scaling_fit(edge_of_stability(pts), n_boot=20)
    assert fit.slope is None and fit.ci is None and fit.n_boot_valid == 0 and fit.expected is None


def test_lr_sensitivity_wortsman() -> None:
    pts = [
        point([OK] * 3, [1.0] * 3, learning_rate=1e-4, batch_size=8),
        point([OK] * 3, [0.5] * 3, learning_rate=1e-3, batch_size=8),
        point([OK] * 3, [0.2] * 3, learning_rate=1e-2, batch_size=8),
        point([DIV] * 3, learning_rate=1e-1, batch_size=8),
        point([OK] * 3, [3.0] * 3, learning_rate=1.0, batch_size=8),  # above l0: capped
    ]
    (s,) = lr_sensitivity(pts)
    assert s.l0 == 2.0 and s.best_loss == pytest.approx(0.2) and s.n_lrs == 5
    assert s.sensitivity == pytest.approx((0.8 + 0.3 + 0.0 + 1.8 + 1.8) / 5)
    assert s.relative == pytest.approx(s.sensitivity / 1.8)  # type: ignore[operator]
    (flat,) = lr_sensitivity(pts[2:3], l0=2.0)
    assert flat.sensitivity == 0.0


def test_refine_candidates_bisect_the_bracket() -> None:
    true_edge = 0.0042
    pts = column(8, [[OK] * 3 if lr < true_edge else [DIV] * 3 for lr in (1e-4, 1e-3, 1e-2, 1e-1)])
    pts += column(32, [[OK] * 3] * 4)  # censored: nothing to refine
    width = math.log(10.0)
    for _ in range(4):
        cands = refine_candidates(edge_of_stability(pts))
        assert len(cands) == 1
        cand = cands[0]
        lr = cand["params"]["learning_rate"]
        assert cand["params"]["batch_size"] == 8 and cand["bracket_width"] == pytest.approx(
            math.exp(width) - 1, rel=1e-4
        )
        pts.append(point([OK] * 3 if lr < true_edge else [DIV] * 3, **cand["params"]))
        (e8, _) = edge_of_stability(pts)
        assert e8.lo is not None and e8.hi is not None and e8.lo < true_edge < e8.hi
        assert math.log(e8.hi / e8.lo) == pytest.approx(width / 2, rel=1e-4)
        width /= 2


def test_bracket_width() -> None:
    assert bracket_width(1e-3, 2e-3) == pytest.approx(1.0)
    assert bracket_width(None, 1.0) is None and bracket_width(1.0, None) is None


def test_gradient_noise_scale() -> None:
    g2, trace = 2.0, 10.0
    assert gradient_noise_scale(8, g2 + trace / 8, 64, g2 + trace / 64) == pytest.approx(trace / g2)
    assert gradient_noise_scale(8, 1.0, 64, 2.0) is None  # noise made the estimate negative
    with pytest.raises(ValueError):
        gradient_noise_scale(64, 1.0, 8, 1.0)
