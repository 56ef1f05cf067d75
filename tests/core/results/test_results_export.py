"""The CSV rows: header, one row per run, metrics and flags decoded from the stored text."""

from __future__ import annotations

import json

from service.core.repo.analysis_rows import RunDetails
from service.core.results.export import EXPORT_METRICS, export_rows
from service.core.results.sweep_data import build_data
from service.core.states import RunStatus
from tests.core.results.rows import row, sweep_record


def test_one_row_per_run_with_its_details() -> None:
    rows = [
        row(1, 1, {"learning_rate": 0.01}, "noisy", seed=0),
        row(2, 2, {"batch_size": 4}, "diverged", seed=1, status=RunStatus.NONFINITE, final_loss=None),
    ]
    details = {
        1: RunDetails(
            json.dumps({"l0": 1.8, "L_min": 0.2, "target_reached": False}), json.dumps(["regressing"])
        ),
        2: RunDetails({"l0": None}, ["nonfinite", "diverged_early"]),  # a driver that decodes JSON itself
    }
    defaults = {"optimizer": "rmsprop", "rho": 0.8, "loss": "mean_squared_error"}  # a compiled model's
    header, first, second = export_rows(build_data(sweep_record(), rows), details, defaults)
    assert header[:4] == ["run_id", "config_id", "batch_size", "learning_rate"]
    assert header[-len(EXPORT_METRICS) - 1 : -1] == list(EXPORT_METRICS) and header[-1] == "trained_with"
    by_name = dict(zip(header, first, strict=True))
    assert by_name["learning_rate"] == 0.01 and by_name["batch_size"] == ""
    assert by_name["flags"] == "regressing" and by_name["l0"] == 1.8 and by_name["target_reached"] is False
    assert by_name["L_end"] == "" and by_name["run_class"] == "noisy"
    second_by_name = dict(zip(header, second, strict=True))
    assert second_by_name["flags"] == "nonfinite;diverged_early" and second_by_name["final_loss"] == ""
    assert second_by_name["status"] == "nonfinite"
    # What each run trained with: its params over the compiled optimizer's settings.
    assert by_name["trained_with"].startswith("optimizer=rmsprop;learning_rate=0.01;rho=0.8;momentum=0.0")
    assert by_name["trained_with"].endswith("schedule=constant;loss=mean_squared_error")
    assert (
        "learning_rate=0.001;" in second_by_name["trained_with"]
        and "batch_size=4" in second_by_name["trained_with"]
    )


def test_runs_without_details_export_empty_metrics() -> None:
    rows = [row(1, 1, {"learning_rate": 0.01}, None, status=RunStatus.RUNNING)]
    header, only = export_rows(build_data(sweep_record(), rows))
    by_name = dict(zip(header, only, strict=True))
    assert [by_name[m] for m in EXPORT_METRICS] == [""] * len(EXPORT_METRICS)
    assert by_name["flags"] == "" and by_name["run_class"] == ""
