"""The numbers behind the diagnosis: matched slices, effects, supported comparisons, seed luck."""

from __future__ import annotations

from typing import Any

import pytest

from service.core.analysis.diagnosis.evidence import (
    MIN_EFFECT,
    dimension_effect,
    failure_placements,
    interval_width,
    matched_slices,
    seed_luck,
    supported_comparison,
)
from service.core.analysis.edge import edge_of_stability
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config, wilson_interval


def _point(
    cid: int,
    classes: list[str],
    *,
    init: list[int] | None = None,
    data: list[int] | None = None,
    **params: Any,
) -> ConfigPoint:
    init = init or list(range(len(classes)))
    data = data or [100 + s for s in range(len(classes))]
    runs = [RunSummary(s, init[s], data[s], c, final_loss=0.1) for s, c in enumerate(classes)]
    return ConfigPoint(cid, params, summarize_config(runs))


def test_slices_match_every_other_parameter() -> None:
    pts = [
        _point(1, ["converged"] * 2, clip=0, lr=1),
        _point(2, ["diverged"] * 2, clip=1, lr=1),
        _point(3, ["converged", "diverged"], clip=0, lr=2),
    ]
    assert matched_slices(pts, "clip") == {(("lr", 1),): {0: [2, 2], 1: [0, 2]}, (("lr", 2),): {0: [1, 2]}}


def test_effect_counts_only_slices_that_tried_two_values() -> None:
    # An unbalanced grid: clip=1 only at lr=1, where it fails; lr=2 (clip=0 alone) does not count.
    pts = [
        _point(1, ["converged"] * 2, clip=0, lr=1),
        _point(2, ["diverged"] * 2, clip=1, lr=1),
        _point(3, ["diverged"] * 2, clip=0, lr=2),
    ]
    e = dimension_effect(pts, "clip")
    assert (e.dim, e.effect, e.matched_slices) == ("clip", 1.0, 1)
    assert e.by_value == ((0, 1.0), (1, 0.0))  # pooled over the matched slice only


def test_comparison_needs_the_minimum_effect_and_separate_intervals() -> None:
    many = [_point(i, ["converged"] * 8, clip=0, lr=i) for i in range(3)]
    many += [_point(10 + i, ["diverged"] * 8, clip=1, lr=i) for i in range(3)]
    c = supported_comparison(many, "clip")
    assert c is not None and (c.better, c.worse, c.difference, c.matched) == (0, 1, 1.0, 3)
    assert (c.better_successes, c.better_runs, c.worse_successes, c.worse_runs) == (24, 24, 0, 24)
    # One seed each: a 100-point difference, but the intervals overlap.
    few = [_point(1, ["converged"], clip=0, lr=1), _point(2, ["diverged"], clip=1, lr=1)]
    assert wilson_interval(1, 1)[0] < wilson_interval(0, 1)[1]
    assert supported_comparison(few, "clip") is None
    assert MIN_EFFECT == 0.2


def test_failures_are_placed_relative_to_the_edge() -> None:
    pts = [
        _point(1, ["converged"] * 2, learning_rate=0.001, batch_size=8),
        _point(2, ["converged", "stuck_at_chance"], learning_rate=0.01, batch_size=8),
        _point(3, ["diverged"] * 2, learning_rate=0.1, batch_size=8),
    ]
    placed = failure_placements(pts, edge_of_stability(pts))
    assert [(f.run_class, f.where, f.runs, f.main_place) for f in placed] == [
        ("diverged", {"above": 2}, 2, "above"),
        ("stuck_at_chance", {"inside": 1}, 1, "inside"),
    ]


def test_seed_luck_splits_init_from_data_order() -> None:
    init = [0, 0, 1, 1]
    classes = ["converged", "converged", "diverged", "diverged"]
    crossed = {"init": init, "data": [7, 8, 7, 8]}
    pts = [_point(1, classes, **crossed, lr=1), _point(2, ["converged"] * 4, **crossed, lr=2)]
    luck = seed_luck(pts)
    assert luck is not None
    assert (luck.n_configs, luck.mixed, luck.share_mixed, luck.seeds_per_config) == (2, 1, 0.5, 4)
    assert luck.components == {"init": pytest.approx(1.0), "data": pytest.approx(0.0)}
    assert seed_luck([]) is None


def test_interval_width_shrinks_with_more_seeds() -> None:
    assert interval_width(4) > interval_width(12) > interval_width(100)
