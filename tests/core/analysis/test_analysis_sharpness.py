"""A run's sharpness curve against its threshold, reduced to what the diagnosis asks."""

from __future__ import annotations

import math

import pytest

from service.core.analysis.sharpness import compared_values, failure_onset, sharpness_metrics
from service.core.analysis.thresholds import DIVERGED, RISES_AFTER_MIN, Thresholds

TH = Thresholds()


def test_a_stable_run_reports_its_peak_ratio_only() -> None:
    out = sharpness_metrics([0, 5, 10], [2.0, 5.0, 4.0], [20.0, 20.0, 20.0], None)
    assert out == {"sharpness_peak_ratio": pytest.approx(0.25)}


def test_a_failure_reached_first_and_when() -> None:
    # Reaches 90% of the threshold at epoch 10, diverges at 14: counted as reached first.
    out = sharpness_metrics([0, 5, 10, 15], [5.0, 12.0, 19.0, 40.0], [20.0] * 4, 14)
    assert out == {
        "sharpness_peak_ratio": pytest.approx(0.95),  # epoch 15 is past the onset: not counted
        "sharpness_reached_epoch": 10.0,
        "failure_onset_epoch": 14.0,
        "sharpness_reached_first": 1.0,
    }


def test_a_failure_below_the_threshold() -> None:
    out = sharpness_metrics([0, 5], [5.0, 6.0], [20.0, None], 7)
    assert out == {"sharpness_peak_ratio": 0.25, "failure_onset_epoch": 7.0, "sharpness_reached_first": 0.0}
    assert sharpness_metrics([0], [math.nan], [20.0], None) == {}


def test_the_compared_quantity_is_the_preconditioned_one_when_present() -> None:
    assert compared_values([1.0, 2.0], [None, 30.0]) == [None, 30.0]
    assert compared_values([1.0, 2.0], [None, None]) == [1.0, 2.0]


def test_failure_onset_by_class() -> None:
    assert failure_onset([1.0, 0.5, math.nan], DIVERGED, 1, TH) == 2
    assert failure_onset([1.0, 5.0, 90.0], DIVERGED, 0, TH) == 2  # diverged finitely: its last epoch
    assert failure_onset([1.0, 0.2, 0.5, 0.9], RISES_AFTER_MIN, 1, TH) == 1
    assert failure_onset([1.0, 0.5, 0.4, 2.0, 0.3], "converged", 4, TH) == 3  # its first spike
    assert failure_onset([1.0, 0.5, 0.4], "converged", 2, TH) is None
