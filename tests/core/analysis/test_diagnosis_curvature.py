"""The curvature answer: did the sharpness reach its threshold before runs failed; stable runs' headroom."""

from __future__ import annotations

import pytest

from service.core.analysis.diagnosis import diagnose
from service.core.analysis.diagnosis.curvature import curvature_answer
from service.core.analysis.regions import ConfigPoint
from service.core.analysis.seeds import RunSummary, summarize_config


def _point(cid: int, runs: list[RunSummary]) -> ConfigPoint:
    return ConfigPoint(cid, {"learning_rate": 0.01 * cid}, summarize_config(runs))


def _run(seed: int, run_class: str, **sharpness: float) -> RunSummary:
    return RunSummary(seed, seed, seed, run_class, final_loss=0.1, l0=1.0, sharpness=sharpness)


def test_failed_runs_reached_first_and_stable_headroom() -> None:
    pts = [
        _point(
            1,
            [_run(0, "converged", sharpness_peak_ratio=0.4), _run(1, "converged", sharpness_peak_ratio=0.95)],
        ),
        _point(
            2,
            [
                _run(0, "diverged", sharpness_peak_ratio=1.1, sharpness_reached_epoch=10.0,
                     failure_onset_epoch=14.0, sharpness_reached_first=1.0),
                _run(1, "rises_after_min", sharpness_peak_ratio=0.3, failure_onset_epoch=6.0,
                     sharpness_reached_first=0.0),
            ],
        ),
        _point(3, [RunSummary(0, 0, 0, "converged", final_loss=0.1, l0=1.0)]),  # not measured
    ]  # fmt: skip
    answer = curvature_answer(pts)
    assert answer is not None and answer.key == "curvature"
    ev = answer.evidence
    assert (ev["measured_runs"], ev["failed_runs"], ev["reached_first"]) == (4, 2, 1)
    assert ev["failed_by_class"] == {"diverged": 1, "rises_after_min": 1}
    assert ev["lead_epochs_median"] == 4.0 and ev["failed_below_peak_ratio_median"] == 0.3
    assert ev["stable_runs"] == 2 and ev["stable_at_edge"] == 1
    assert ev["stable_peak_ratio_median"] == pytest.approx(0.675)
    assert answer.config_ids == (2,)
    assert "1 (50%) had first brought their sharpness to the stability threshold" in answer.answer
    assert "a median 4 epochs before the failure began" in answer.answer


def test_no_answer_without_measurements_and_the_report_keeps_three() -> None:
    pts = [_point(1, [RunSummary(0, 0, 0, "converged", final_loss=0.1, l0=1.0)])]
    assert curvature_answer(pts) is None
    report = diagnose(
        points=pts, params_swept={"learning_rate": [0.01]}, edges=[], fit=[], sensitivity=[], num_classes=0
    )
    assert [a.key for a in report.answers] == ["fluctuation", "rises", "seed_luck"]
    measured = [_point(1, [_run(0, "converged", sharpness_peak_ratio=0.5)])]
    report = diagnose(
        points=measured,
        params_swept={"learning_rate": [0.01]},
        edges=[],
        fit=[],
        sensitivity=[],
        num_classes=0,
    )
    assert [a.key for a in report.answers][-1] == "curvature"
