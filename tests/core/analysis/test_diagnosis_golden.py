"""The diagnosis of fixed synthetic sweeps, pinned byte for byte (JSON and Markdown).

The report is what users read and what finished sweeps store; a refactoring of
the diagnosis must not change a character of it. Each scenario below reaches
different sections and remedies. After a deliberate change of wording, rewrite
the pinned copy with ``SWEEPS_REGENERATE_GOLDEN=1`` and review its diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.core.analysis.diagnosis import diagnose, report_to_markdown
from service.core.analysis.edge import edge_of_stability, lr_sensitivity
from service.core.analysis.edge_scaling import scaling_fit
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config

GOLDEN = Path(__file__).parent / "golden" / "diagnosis.json"
LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)


class _Points:
    """Configuration points with ids in creation order, so every run of a scenario is identical."""

    def __init__(self) -> None:
        self.points: list[ConfigPoint] = []

    def add(
        self,
        classes: list[str],
        *,
        init: list[int] | None = None,
        data: list[int] | None = None,
        **params: Any,
    ) -> None:
        init = init or list(range(len(classes)))
        data = data or [100 + s for s in range(len(classes))]
        runs = [
            RunSummary(
                s,
                init[s],
                data[s],
                c,
                final_loss=None if c == "diverged" else 0.1 + 0.01 * s,
                final_accuracy=None if c == "diverged" else 0.9 - 0.01 * s,
                epochs_to_target=3 + s if c == "converged" else None,
                l0=1.4,
            )
            for s, c in enumerate(classes)
        ]
        self.points.append(ConfigPoint(len(self.points) + 1, params, summarize_config(runs)))


def _rises_with_beta1(beta_matters: bool) -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for bs in (16, 64):
        for b1 in (0.5, 0.9):
            edge = 3e-4 if (b1 == 0.5 and beta_matters) else 3e-3
            for lr in LRS:
                cls = "rises_after_min" if lr >= edge else "converged"
                p.add([cls] * 4, learning_rate=lr, batch_size=bs, beta_1=b1)
    return p.points, {"learning_rate": list(LRS), "batch_size": [16, 64], "beta_1": [0.5, 0.9]}


def _clipping() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for clip in (0.0, 1.0):
        edge = 3e-3 if clip else 1e-4
        for lr in LRS:
            p.add(
                ["diverged" if lr >= edge else "converged"] * 3,
                learning_rate=lr,
                batch_size=32,
                clipnorm=clip,
            )
    return p.points, {"learning_rate": list(LRS), "clipnorm": [0.0, 1.0]}


def _batch_scaling() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for bs, edge in ((8, 1e-4), (32, 3e-4), (128, 1e-3)):
        for opt in ("adam", "sgd"):
            for lr in LRS:
                cls = "diverged" if lr >= edge else ("slow" if lr <= 3e-5 else "converged")
                p.add([cls] * 3, learning_rate=lr, batch_size=bs, optimizer=opt)
    return p.points, {"learning_rate": list(LRS), "batch_size": [8, 32, 128], "optimizer": ["adam", "sgd"]}


def _small_batches_stuck() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for bs in (2, 32):
        for lr in LRS:
            p.add(["stuck_at_chance" if bs == 2 else "noisy"] * 3, learning_rate=lr, batch_size=bs)
    return p.points, {"learning_rate": list(LRS), "batch_size": [2, 32]}


def _seed_luck() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    init = [0, 0, 1, 1, 2, 2, 3, 3]
    data = [7, 8, 7, 8, 7, 8, 7, 8]
    classes = ["converged" if i < 2 else "stuck_at_chance" for i in init]
    for lr in LRS[:3]:
        p.add(classes, init=init, data=data, learning_rate=lr, batch_size=32)
    return p.points, {"learning_rate": list(LRS[:3])}


def _data_order_luck_and_schedule() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    init = [0, 0, 1, 1]
    data = [7, 8, 7, 8]
    for schedule in ("constant", "cosine"):
        for lr in LRS[:4]:
            if schedule == "cosine" or lr <= 3e-5:
                classes = ["converged"] * 4
            else:
                classes = ["converged" if d == 7 else "noisy" if lr < 3e-4 else "diverged" for d in data]
            p.add(classes, init=init, data=data, learning_rate=lr, schedule=schedule)
    return p.points, {"learning_rate": list(LRS[:4]), "schedule": ["constant", "cosine"]}


def _nothing_stable() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for bs in (4, 8):
        for lr in LRS[:3]:
            p.add(["diverged", "diverged", "slow"], learning_rate=lr, batch_size=bs)
    return p.points, {"learning_rate": list(LRS[:3]), "batch_size": [4, 8]}


def _stable_everywhere() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for lr in LRS[:2]:
        p.add(["converged", "slow", "slow"], learning_rate=lr, batch_size=16)
    return p.points, {"learning_rate": list(LRS[:2])}


def _no_learning_rate() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    for bs in (4, 64):
        p.add(["converged", "diverged", "rises_after_min"], batch_size=bs)
    return p.points, {"batch_size": [4, 64]}


def _narrow_window() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    p = _Points()
    pattern = ("diverged", "converged", "diverged", "converged", "diverged", "diverged")
    for lr, cls in zip(LRS, pattern, strict=True):
        p.add([cls] * 2, learning_rate=lr, batch_size=8)
    return p.points, {"learning_rate": list(LRS)}


def _empty() -> tuple[list[ConfigPoint], dict[str, list[Any]]]:
    return [], {}


SCENARIOS: dict[str, Callable[[], tuple[list[ConfigPoint], dict[str, list[Any]]]]] = {
    "rises_with_beta1": lambda: _rises_with_beta1(True),
    "rises_without_beta1": lambda: _rises_with_beta1(False),
    "clipping": _clipping,
    "batch_scaling": _batch_scaling,
    "small_batches_stuck": _small_batches_stuck,
    "seed_luck": _seed_luck,
    "data_order_luck_and_schedule": _data_order_luck_and_schedule,
    "nothing_stable": _nothing_stable,
    "stable_everywhere": _stable_everywhere,
    "no_learning_rate": _no_learning_rate,
    "narrow_window": _narrow_window,
    "empty": _empty,
}


def _render(name: str) -> dict[str, str]:
    points, swept = SCENARIOS[name]()
    lr_swept = any("learning_rate" in p.params for p in points)
    edges = edge_of_stability(points) if lr_swept else []
    report = diagnose(
        points=points,
        params_swept=swept,
        edges=edges,
        fit=scaling_fit(edges, n_boot=50) if edges else [],
        sensitivity=lr_sensitivity(points, 1.4) if edges else [],
        num_classes=4,
    )
    return {
        "json": json.dumps(report.to_dict(), allow_nan=False),
        "markdown": report_to_markdown(report, title=f"Diagnosis of {name}"),
    }


def test_pinned_copy_covers_every_scenario() -> None:
    if os.environ.get("SWEEPS_REGENERATE_GOLDEN"):
        GOLDEN.write_text(json.dumps({n: _render(n) for n in SCENARIOS}, indent=1) + "\n")
    assert sorted(json.loads(GOLDEN.read_text())) == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_report_is_byte_for_byte_the_pinned_copy(name: str) -> None:
    pinned = json.loads(GOLDEN.read_text())[name]
    got = _render(name)
    assert got["json"] == pinned["json"]
    assert got["markdown"] == pinned["markdown"]
