"""From a trainer's ReplicaResult to a stored RunOutcome: classify and summarise.

The run's metrics hold its class evidence, its fluctuation measures
(``service.core.analysis.fluctuation``: full-set and running-mean indices,
spikes, mini-batch loss variance when steps are recorded) and, when the sweep
records sharpness, how close to its stability threshold it trained
(``service.core.analysis.sharpness``).

Pure apart from numpy: the worker calls it as each configuration finishes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.core.analysis.classify import RunCurve, classify_run
from service.core.analysis.sharpness import compared_values, failure_onset, sharpness_metrics
from service.core.analysis.thresholds import Thresholds
from service.core.records import RunOutcome
from service.core.spec import SweepSpec
from service.core.states import RunStatus
from workers.training.interface import EpochRecord, ReplicaResult


def _arr(records: Sequence[EpochRecord], attr: str) -> np.ndarray | None:
    vals = [getattr(r, attr) for r in records]
    if all(v is None for v in vals):
        return None
    return np.array([np.nan if v is None else v for v in vals], dtype=np.float64)


def outcome(
    result: ReplicaResult,
    run_id: int,
    *,
    num_classes: int,
    l_chance: float | None,
    majority_accuracy: float | None,
    thresholds: Thresholds,
) -> RunOutcome:
    recs = result.epochs
    if result.status == "error" or not recs:
        return RunOutcome(
            run_id=run_id,
            status=RunStatus(result.status),
            run_class=None,
            flags=[],
            metrics={},
            epochs_run=max(0, len(recs) - 1),
            final_loss=None,
            final_accuracy=None,
            error=result.error,
            traceback=result.traceback,
            training=result.training,
        )
    loss = _arr(recs, "loss")
    assert loss is not None
    curve = RunCurve(
        loss=loss,
        accuracy=_arr(recs, "accuracy"),
        val_loss=_arr(recs, "val_loss"),
        val_accuracy=_arr(recs, "val_accuracy"),
        nonfinite=result.status == "nonfinite",
        running_loss=_arr(recs, "running_loss"),
        step_losses=result.step_losses or None,
    )
    run_class: str | None = None
    flags: list[str] = []
    metrics: dict[str, Any] = {}
    if result.status != "cancelled":
        verdict = classify_run(
            curve,
            num_classes=num_classes,
            majority_accuracy=majority_accuracy,
            thresholds=thresholds,
            l_chance=l_chance,
        )
        run_class, flags, metrics = verdict.run_class, list(verdict.flags), dict(verdict.metrics)
        metrics.update(_sharpness(recs, loss, run_class, metrics.get("t_min"), thresholds))
    last = recs[-1]
    return RunOutcome(
        run_id=run_id,
        status=RunStatus(result.status),
        run_class=run_class,
        flags=flags,
        metrics=metrics,
        epochs_run=len(recs) - 1,
        final_loss=last.loss,
        final_accuracy=last.accuracy,
        step_losses=[list(p) for p in result.step_losses] or None,
        training=result.training,
    )


def _sharpness(
    recs: Sequence[EpochRecord], loss: np.ndarray, run_class: str, t_min: Any, thresholds: Thresholds
) -> dict[str, float]:
    """The run's sharpness against its threshold (``analysis.sharpness``), when it was measured."""
    measured = [r for r in recs if r.sharpness is not None]
    if not measured:
        return {}
    onset = failure_onset(list(loss), run_class, t_min, thresholds)
    compared = compared_values(
        [r.sharpness for r in measured], [r.preconditioned_sharpness for r in measured]
    )
    return sharpness_metrics(
        [r.epoch for r in measured], compared, [r.stability_threshold for r in measured], onset
    )


def seed_aggregate(
    results: Sequence[ReplicaResult], epochs: int
) -> tuple[float | None, list[tuple[int, float]]]:
    """Median over seeds of the final loss and of each epoch's loss (Optuna's value/intermediates).

    A seed that went non-finite counts as +inf from then on, so the median
    says "most seeds diverged" when they did instead of hiding them.
    """
    per_epoch: list[list[float]] = [[] for _ in range(epochs + 1)]
    finals: list[float] = []
    for r in results:
        if r.status in ("error", "cancelled") or not r.epochs:
            continue
        last = math.inf
        for e in range(epochs + 1):
            if e < len(r.epochs):
                v = r.epochs[e].loss
                last = v if v is not None and math.isfinite(v) else math.inf
            per_epoch[e].append(last)
        finals.append(last)
    if not finals:
        return None, []
    inter = [(e, float(np.median(vals))) for e, vals in enumerate(per_epoch) if vals]
    return float(np.median(finals)), inter


def thresholds_for(spec: SweepSpec) -> Thresholds:
    return Thresholds().with_overrides(spec.stability)
