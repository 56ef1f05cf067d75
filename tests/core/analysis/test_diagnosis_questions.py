"""The three questions: answers from hand-built configurations, and what is missing when they cannot."""

from __future__ import annotations

from typing import Any

from service.core.analysis.diagnosis.questions import (
    fluctuation_answer,
    rises_answer,
    seed_answer,
    seeds_needed,
)
from service.core.analysis.fluctuation_scaling import summarize_fluctuation
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config


def point(cid: int, classes: list[str], fluct: list[float] | None = None, **params: Any) -> ConfigPoint:
    runs = [
        RunSummary(
            s,
            s // 2,
            s % 2,
            c,
            fluctuation={} if fluct is None else {"fluctuation": fluct[s], "jump_p90": 1.0 + 2 * fluct[s]},
        )
        for s, c in enumerate(classes)
    ]
    return ConfigPoint(cid, params, summarize_config(runs))


def test_seeds_needed_two_proportions() -> None:
    # Fleiss et al.: p1 = 0.5 vs p2 = 1.0 at 5% / 80% needs 11 per group; equal rates cannot be told apart.
    assert seeds_needed(0.5, 1.0) == 11
    assert seeds_needed(0.2, 0.8) == 10
    assert seeds_needed(0.5, 0.5) is None


def test_fluctuation_answer_says_what_to_sweep_when_batch_size_is_fixed() -> None:
    pts = [
        point(i, ["noisy"] * 4, [0.1 * (i + 1)] * 4, learning_rate=lr, batch_size=32)
        for i, lr in enumerate([1e-3, 1e-2])
    ]
    a = fluctuation_answer(
        summarize_fluctuation(pts, n_boot=0), {"learning_rate": [1e-3, 1e-2]}, "learning_rate"
    )
    assert a.missing == "add batch_size with at least two values to space"
    assert "Learning_rate moves fluctuation most: it grows 2x from learning_rate 0.001 to 0.01" in a.answer
    assert "stability edge" in a.answer and "lower or decaying learning_rate" in a.answer
    unmeasured = fluctuation_answer(
        summarize_fluctuation([point(9, ["noisy"])], n_boot=0), {}, "learning_rate"
    )
    # Unmeasured: say why (too few epochs for the index) and what to add.
    assert unmeasured.answer.startswith("No run carries a fluctuation measure")
    assert unmeasured.missing == "train for at least 5 epochs (more give a steadier index)"


def test_rises_answer_gives_the_threshold_per_beta_1() -> None:
    pts = []
    cid = 0
    for b1 in (0.5, 0.9):
        for lr in (1e-4, 1e-3, 1e-2):
            cid += 1
            rises = (b1 == 0.5 and lr >= 1e-3) or (b1 == 0.9 and lr >= 1e-2)
            pts.append(
                point(cid, ["rises_after_min" if rises else "converged"] * 2, learning_rate=lr, beta_1=b1)
            )
    swept = {"learning_rate": [1e-4, 1e-3, 1e-2], "beta_1": [0.5, 0.9]}
    a = rises_answer(pts, swept, "learning_rate")
    assert [t["threshold_lr"] for t in a.evidence["thresholds"]] == [1e-3, 1e-2]
    assert "By beta_1: 0.5: 4/6 runs rise, 0.9: 2/6 runs rise." in a.answer
    assert a.missing is not None and "clipnorm" in a.missing and "beta_1" not in a.missing


def test_seed_answer_compares_the_most_mixed_with_the_best() -> None:
    pts = [
        point(1, ["converged", "stuck_at_chance", "converged", "stuck_at_chance"], learning_rate=1e-3),
        point(2, ["converged"] * 4, learning_rate=1e-4),
    ]
    a = seed_answer(pts, {"init": 0.0, "data": 1.0})
    assert "2 of 4 seeds" in a.answer and "15% to 85%" in a.answer
    assert "mostly in the data order" in a.answer and "about 11 seeds each" in a.answer
    assert a.evidence["seeds_needed"] == 11 and a.config_ids == (1, 2)
    assert a.missing is not None and "more seeds" in a.missing
    assert seed_answer([pts[1]], None).evidence["mixed_configs"] == 0
