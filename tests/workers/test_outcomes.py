"""workers/outcomes.py: a trainer's ReplicaResult -> the RunOutcome the worker stores, and the seed median."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from service.core.analysis.thresholds import Thresholds
from service.core.records import RunOutcome
from service.core.states import RunStatus
from service.core.sweeps import parse_spec
from tests.conftest import small_spec
from workers.outcomes import outcome, seed_aggregate, thresholds_for
from workers.training.interface import EpochRecord, ReplicaResult


def _rec(epoch: int, loss: float, accuracy: float | None = 0.5) -> EpochRecord:
    return EpochRecord(epoch, loss, accuracy, None if epoch == 0 else loss, None, None, 1e-3, None)


def _result(losses: list[float], status: str = "completed", **kw: object) -> ReplicaResult:
    return ReplicaResult(key=0, status=status, epochs=[_rec(e, v) for e, v in enumerate(losses)], **kw)  # type: ignore[arg-type]


def _outcome(result: ReplicaResult) -> RunOutcome:
    return outcome(
        result, 7, num_classes=2, l_chance=math.log(2), majority_accuracy=0.5, thresholds=Thresholds()
    )


def test_a_converged_run_is_classified_and_summarised() -> None:
    losses = [0.69 * 0.5**e for e in range(12)]
    result = ReplicaResult(
        key=0,
        status="completed",
        epochs=[_rec(e, v, 1.0) for e, v in enumerate(losses)],
        step_losses=[(0, 0.7)],
    )
    o = _outcome(result)
    assert o.run_id == 7 and o.status == RunStatus.COMPLETED and o.run_class == "converged"
    assert o.epochs_run == 11 and o.final_loss == losses[-1] and o.final_accuracy == 1.0
    assert o.metrics["l0"] == pytest.approx(0.69) and o.step_losses == [[0, 0.7]]


def test_a_non_finite_run_is_diverged_and_keeps_its_last_loss() -> None:
    o = _outcome(_result([0.69, 0.6, math.inf], status="nonfinite"))
    assert o.status == RunStatus.NONFINITE and o.run_class == "diverged" and "nonfinite" in o.flags
    assert o.final_loss == math.inf and o.epochs_run == 2 and o.step_losses is None


def test_a_cancelled_run_keeps_its_curve_summary_but_no_class() -> None:
    o = _outcome(_result([0.69, 0.5], status="cancelled"))
    assert o.status == RunStatus.CANCELLED and o.run_class is None and o.flags == [] and o.metrics == {}
    assert o.epochs_run == 1 and o.final_loss == 0.5


def test_an_error_or_an_empty_result_stores_the_error_only() -> None:
    o = _outcome(_result([0.69, 0.6], status="error", error="ValueError: x", traceback="tb"))
    assert o.status == RunStatus.ERROR and o.run_class is None and o.final_loss is None
    assert (o.error, o.traceback, o.epochs_run) == ("ValueError: x", "tb", 1)
    empty = _outcome(_result([], status="completed"))
    assert empty.run_class is None and empty.epochs_run == 0 and empty.final_loss is None


def test_seed_aggregate_is_the_median_with_non_finite_seeds_as_infinity() -> None:
    results = [
        _result([1.0, 0.5, 0.25]),
        _result([1.0, 0.7, 0.3]),
        _result([1.0, math.nan], status="nonfinite"),  # diverged at epoch 1: +inf from then on
        _result([9.0, 9.0, 9.0], status="error"),  # errors and cancelled runs do not count
        _result([9.0], status="cancelled"),
    ]
    value, inter = seed_aggregate(results, epochs=2)
    assert value == 0.3
    assert inter == [(0, 1.0), (1, 0.7), (2, 0.3)]
    # Most seeds diverged: the median says so.
    value, inter = seed_aggregate([results[0], results[2], results[2]], epochs=2)
    assert value == math.inf and inter[1] == (1, math.inf)
    assert seed_aggregate([results[3]], epochs=2) == (None, [])


def test_thresholds_for_applies_the_sweeps_overrides() -> None:
    spec = parse_spec(small_spec(stability={"divergence_factor": 8.0}))
    assert thresholds_for(spec) == Thresholds(divergence_factor=8.0)
    assert thresholds_for(parse_spec(small_spec())) == Thresholds()


def test_sharpness_metrics_are_stored_when_measured() -> None:
    """Sharpness at 40% then 95% of 2/lr before the run goes non-finite at epoch 3: reached first."""
    recs = [_rec(e, v) for e, v in enumerate([0.69, 0.6, 0.5, math.inf])]
    recs[0] = replace(recs[0], sharpness=800.0, stability_threshold=2000.0)
    recs[2] = replace(recs[2], sharpness=1900.0, stability_threshold=2000.0)
    o = _outcome(ReplicaResult(key=0, status="nonfinite", epochs=recs))
    assert o.metrics["sharpness_peak_ratio"] == pytest.approx(0.95)
    assert o.metrics["sharpness_reached_epoch"] == 2.0 and o.metrics["failure_onset_epoch"] == 3.0
    assert o.metrics["sharpness_reached_first"] == 1.0
    assert "sharpness_peak_ratio" not in _outcome(_result([0.69, 0.5, 0.4])).metrics
