"""``diagnose`` on synthetic sweeps: the right remedies, and only supported ones."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from service.core.analysis.diagnosis import Report, diagnose, report_to_markdown
from service.core.analysis.edge import edge_of_stability, lr_sensitivity
from service.core.analysis.edge_scaling import scaling_fit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config

LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
_ids = count(1)


def point(
    classes: list[str], *, init: list[int] | None = None, data: list[int] | None = None, **params: Any
) -> ConfigPoint:
    init = init or list(range(len(classes)))
    data = data or [100 + s for s in range(len(classes))]
    runs = [
        RunSummary(s, init[s], data[s], c, final_loss=None if c == "diverged" else 0.1, l0=1.4)
        for s, c in enumerate(classes)
    ]
    return ConfigPoint(next(_ids), params, summarize_config(runs))


def run_diagnosis(points: list[ConfigPoint], swept: dict[str, list[Any]]) -> Report:
    edges = edge_of_stability(points)
    return diagnose(
        points=points,
        params_swept=swept,
        edges=edges,
        fit=scaling_fit(edges, n_boot=50),
        sensitivity=lr_sensitivity(points),
        num_classes=4,
    )


def report2_sweep(beta_matters: bool = True) -> list[ConfigPoint]:
    """Report 2: the loss rises after its minimum at high lr, much more with beta_1 = 0.5."""
    pts = []
    for bs in (16, 64):
        for b1 in (0.5, 0.9):
            edge = 3e-4 if (b1 == 0.5 and beta_matters) else 3e-3
            for lr in LRS:
                cls = "rises_after_min" if lr >= edge else "converged"
                pts.append(point([cls] * 4, learning_rate=lr, batch_size=bs, beta_1=b1))
    return pts


SWEPT2: dict[str, list[Any]] = {"learning_rate": list(LRS), "batch_size": [16, 64], "beta_1": [0.5, 0.9]}


def test_report2_recommends_lower_lr_and_beta1_09() -> None:
    r = run_diagnosis(report2_sweep(), SWEPT2)
    names = [x.remedy for x in r.remedies]
    assert any("Lower the learning rate" in n for n in names)
    assert "Use beta_1=0.9 rather than 0.5" in names
    assert not any("batch" in n for n in names)  # batch size made no difference here
    assert not any("seeds" in n for n in names)  # every seed agreed
    assert r.failures[0].run_class == "rises_after_min" and r.failures[0].where == {"above": 32}
    assert r.dimension_effects[0].dim == "learning_rate"
    assert {d.dim: d.effect for d in r.dimension_effects}["batch_size"] == 0.0
    assert "Training is stable for learning_rate" in r.headline and "rise after their minimum" in r.headline
    assert "\n" not in r.headline
    json.dumps(r.to_dict(), allow_nan=False)
    md = report_to_markdown(r)
    assert md.startswith("# Diagnosis") and r.headline in md and "beta_1=0.9" in md


def test_no_beta1_remedy_when_beta1_does_not_matter() -> None:
    r = run_diagnosis(report2_sweep(beta_matters=False), SWEPT2)
    assert not any("beta_1" in x.remedy for x in r.remedies)
    assert any("Lower the learning rate" in x.remedy for x in r.remedies)


def test_clipping_remedy_when_clipping_moves_the_edge() -> None:
    pts = []
    for clip in (0.0, 1.0):
        edge = 3e-3 if clip else 1e-4
        for lr in LRS:
            pts.append(
                point(
                    ["diverged" if lr >= edge else "converged"] * 3,
                    learning_rate=lr,
                    batch_size=32,
                    clipnorm=clip,
                )
            )
    r = run_diagnosis(pts, {"learning_rate": list(LRS), "clipnorm": [0.0, 1.0]})
    assert "Clip gradients (clipnorm=1)" in [x.remedy for x in r.remedies]


def test_batch_scaling_remedy_needs_a_confident_positive_exponent() -> None:
    pts = []
    for bs, edge in ((8, 1e-4), (32, 3e-4), (128, 1e-3)):
        for lr in LRS:
            pts.append(
                point(["diverged" if lr >= edge else "converged"] * 3, learning_rate=lr, batch_size=bs)
            )
    r = run_diagnosis(pts, {"learning_rate": list(LRS), "batch_size": [8, 32, 128]})
    names = [x.remedy for x in r.remedies]
    assert "A larger batch tolerates a larger learning rate" in names
    # Pooled over all six lrs batch 128 wins 12/18 vs 6/18: the intervals overlap, so the
    # matched comparison alone does not claim a fixed-lr batch effect.
    assert not any(n.startswith("Use a larger batch") for n in names)


def test_larger_batch_remedy_when_small_batches_fail_at_every_lr() -> None:
    # Report 1: batch 2 does not learn at any lr; batch 32 trains.
    pts = []
    for bs in (2, 32):
        for lr in LRS:
            pts.append(
                point(["stuck_at_chance" if bs == 2 else "noisy"] * 3, learning_rate=lr, batch_size=bs)
            )
    r = run_diagnosis(pts, {"learning_rate": list(LRS), "batch_size": [2, 32]})
    assert "Use a larger batch (32 rather than 2)" in [x.remedy for x in r.remedies]
    assert r.dimension_effects[0].dim == "batch_size"


def test_seed_luck_asks_for_more_seeds_and_names_the_init_seed() -> None:
    # Report 3: crossed seeds; init seeds 0-1 succeed, 2-3 stay at chance, whatever the data order.
    pts = []
    init = [0, 0, 1, 1, 2, 2, 3, 3]
    data = [7, 8, 7, 8, 7, 8, 7, 8]
    classes = ["converged" if i < 2 else "stuck_at_chance" for i in init]
    for lr in LRS[:3]:
        pts.append(point(classes, init=init, data=data, learning_rate=lr, batch_size=32))
    r = run_diagnosis(pts, {"learning_rate": list(LRS[:3])})
    assert any(x.remedy == "Run more seeds" for x in r.remedies)
    assert r.seed_dependence.share_mixed == 1.0
    assert "initial weights" in r.seed_dependence.text


def test_empty_sweep() -> None:
    r = run_diagnosis([], {})
    assert r.headline == "No finished runs yet." and r.remedies == ()
    assert "# Diagnosis" in report_to_markdown(r)


def test_init_saved_says_only_the_data_order_varied() -> None:
    pts = [point(["converged", "diverged", "converged"], learning_rate=lr) for lr in LRS[:3]]
    edges = edge_of_stability(pts)
    kwargs: dict[str, Any] = {
        "points": pts,
        "params_swept": {"learning_rate": list(LRS[:3])},
        "edges": edges,
        "fit": [],
        "sensitivity": [],
        "num_classes": 4,
    }
    saved = diagnose(**kwargs, init="saved")
    seeded = diagnose(**kwargs)
    sentence = "Every seed started from the same saved weights (init: saved)"
    assert saved.seed_dependence.text.startswith(sentence)
    seed_answer = next(a for a in saved.answers if a.key == "seed_luck")
    assert seed_answer.answer.startswith(sentence)
    assert sentence not in seeded.seed_dependence.text
    assert sentence in report_to_markdown(saved) and sentence not in report_to_markdown(seeded)
