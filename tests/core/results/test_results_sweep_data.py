"""SweepData from rows: which runs count, the reference loss, classes, and the grid's edges apart."""

from __future__ import annotations

import dataclasses

import pytest

from service.core.analysis.seeds import RunSummary
from service.core.results.sweep_data import build_data, run_summary
from service.core.states import RunStatus
from tests.core.results.rows import row, sweep_record


def test_only_finished_classified_runs_count() -> None:
    p = {"learning_rate": 0.01}
    rows = [
        row(1, 1, p, "converged", seed=0, l0=2.0),
        row(2, 1, p, "diverged", seed=1, status=RunStatus.NONFINITE, final_loss=None, l0=1.0),
        row(3, 1, p, None, seed=2, status=RunStatus.RUNNING, l0=4.0),
        row(4, 1, p, "converged", seed=3, status=RunStatus.CANCELLED),
        row(5, 2, {"learning_rate": 0.1}, None, status=RunStatus.RUNNING),
    ]
    data = build_data(sweep_record(), rows)
    assert [pt.config_id for pt in data.points] == [1]  # config 2 has nothing finished
    assert data.points[0].summary.n == 2 and data.points[0].summary.successes == 1
    assert data.rows == rows  # every run stays for the export
    assert data.l0 == 2.0  # median over every run that measured it
    assert data.swept == {}  # of the finished configurations, one learning rate: nothing swept yet


def test_classes_come_from_the_preset_else_from_a_chance_loss() -> None:
    p = {"learning_rate": 0.01}
    preset = sweep_record({"workload": {"preset": "sensor_lstm"}})
    assert build_data(preset, [row(1, 1, p, "converged")]).num_classes == 6
    assert build_data(sweep_record(), [row(1, 1, p, "converged", l_chance=0.69)]).num_classes == 2
    assert build_data(sweep_record(), [row(1, 1, p, "converged")]).num_classes == 0
    # A regression's runs have a chance loss (the constant predictor's) and no accuracy.
    regression = row(1, 1, p, "converged", l_chance=25.0)._replace(final_accuracy=None)
    assert build_data(sweep_record(), [regression]).num_classes == 0


def test_grid_edges_leave_refinement_out() -> None:
    rows = []
    for cid, lr in enumerate((0.001, 0.01, 0.1), start=1):
        cls = "converged" if lr < 0.1 else "diverged"
        rows += [row(10 * cid + s, cid, {"learning_rate": lr}, cls, seed=s) for s in range(2)]
    rows += [row(40 + s, 4, {"learning_rate": 0.03}, "converged", seed=s) for s in range(2)]  # refinement
    data = build_data(sweep_record(), rows, {4: 1})
    (grid,) = data.grid_edges()
    (refined,) = data.edges()
    assert (grid.lo, grid.hi) == (0.01, 0.1)
    assert (refined.lo, refined.hi) == (0.03, 0.1)
    assert data.edges() is not data.edges() and data.edges() == [refined]  # copies of one computation


def test_run_summary_equals_the_one_its_constructor_builds() -> None:
    r = row(7, 1, {"learning_rate": 0.01}, "noisy", seed=3, l0=2.0)
    r = r._replace(
        epochs_to_target=4,
        fluctuation={"fluctuation": 0.1, "jump_p90": 1.5},
        sharpness={"sharpness_peak_ratio": 0.8},
    )
    built = run_summary(r)
    expected = RunSummary(
        seed=3,
        init_seed=r.init_seed,
        data_seed=r.data_seed,
        run_class="noisy",
        final_loss=r.final_loss,
        final_accuracy=r.final_accuracy,
        epochs_to_target=4,
        l0=2.0,
        fluctuation={"fluctuation": 0.1, "jump_p90": 1.5},
        sharpness={"sharpness_peak_ratio": 0.8},
    )
    assert built == expected and repr(built) == repr(expected)
    assert vars(built).keys() == vars(expected).keys()
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.seed = 4  # type: ignore[misc]
