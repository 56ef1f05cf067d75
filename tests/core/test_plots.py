"""service/core/plots.py: what the dashboard draws, reduced on the server to the size of the grid."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from service.core import plots
from service.core.records import CurvePoint, RunRecord
from service.core.results.sweep_data import build_data
from service.core.states import RunStatus
from tests.core.results.rows import T0, row, sweep_record


def _run(run_id: int, run_class: str | None, *, status: str = RunStatus.COMPLETED) -> RunRecord:
    return RunRecord(
        run_id, 1, 1, 1, run_id, 0, 0, status, run_class, [], {}, 3, 0.1, 0.5, {}, None, None, None, T0, T0
    )


def _curve(losses: list[float]) -> list[CurvePoint]:
    return [CurvePoint(e, v, 0.5, None, None, None, 1e-3, None) for e, v in enumerate(losses)]


def test_sample_indices_keep_first_and_last() -> None:
    assert plots._sample_indices(3, 5) == [0, 1, 2]
    idx = plots._sample_indices(1000, 10)
    assert idx[0] == 0 and idx[-1] == 999 and len(idx) == 10 and idx == sorted(set(idx))
    assert plots._sample_indices(0, 5) == []


def test_swept_dimensions_put_lr_batch_and_betas_first() -> None:
    rows = [
        row(
            i,
            i,
            {"learning_rate": lr, "batch_size": bs, "beta_1": 0.9, "optimizer": opt, "beta_2": b2},
            "converged",
        )
        for i, (lr, bs, opt, b2) in enumerate(
            [(1e-3, 8, "adam", 0.99), (1e-2, 32, "sgd", 0.999), (1e-3, 32, "adam", 0.99)], start=1
        )
    ]
    dims = plots.swept_dimensions(build_data(sweep_record(), rows))
    assert list(dims) == ["learning_rate", "batch_size", "beta_2", "optimizer"]  # beta_1 was not swept


def test_loss_vs_lr_reduces_seeds_to_quartiles_and_counts_failures() -> None:
    def p(lr: float, bs: int) -> dict[str, object]:
        return {"learning_rate": lr, "batch_size": bs, "beta_1": 0.9 if lr < 0.05 else 0.5}

    rows = [
        row(1, 1, p(0.01, 8), "converged", seed=0, final_loss=0.1, l0=2.0),
        row(2, 1, p(0.01, 8), "converged", seed=1, final_loss=0.3),
        row(3, 1, p(0.01, 8), "rises_after_min", seed=2, final_loss=0.5),
        row(4, 2, p(0.1, 8), "diverged", seed=0, final_loss=None, status=RunStatus.NONFINITE),
        row(5, 2, p(0.1, 8), None, seed=1, status=RunStatus.RUNNING),  # unfinished: left out
        row(6, 3, p(0.01, 32), "converged", seed=0, final_loss=0.2),
    ]
    out = plots.loss_vs_lr(build_data(sweep_record(), rows))
    assert out is not None and out["pooled_over"] == ["beta_1"] and out["l0"] == 2.0
    (b8, b32) = out["series"]
    assert b8["batch_size"] == 8 and b32["batch_size"] == 32
    low, high = b8["points"]
    assert (low["lr"], low["n"], low["failed"], low["failed_nonfinite"]) == (0.01, 3, 1, 0)
    assert (low["q25"], low["median"], low["q75"], low["failed_median"]) == pytest.approx(
        (0.2, 0.3, 0.4, 0.5)
    )
    assert (high["n"], high["failed"], high["failed_nonfinite"], high["median"]) == (1, 1, 1, None)
    assert b32["points"] == [
        {
            "lr": 0.01,
            "n": 1,
            "median": 0.2,
            "q25": 0.2,
            "q75": 0.2,
            "failed": 0,
            "failed_nonfinite": 0,
            "failed_median": None,
        }
    ]
    assert plots.loss_vs_lr(build_data(sweep_record(), [row(1, 1, {"batch_size": 8}, "converged")])) is None


def test_edge_plot_draws_edges_per_batch_size() -> None:
    rows = []
    for cid, (lr, bs) in enumerate(
        [(1e-3, 8), (1e-2, 8), (1e-1, 8), (1e-3, 32), (1e-2, 32), (1e-1, 32)], start=1
    ):
        cls = "diverged" if lr >= (1e-2 if bs == 8 else 1e-1) else "converged"
        rows += [
            row(10 * cid + s, cid, {"learning_rate": lr, "batch_size": bs}, cls, seed=s) for s in range(2)
        ]
    out = plots.edge_plot(build_data(sweep_record(), rows))
    edges = {e["batch_size"]: e for e in out["edges"]}
    assert set(edges) == {8, 32}
    assert (edges[8]["lo"], edges[8]["hi"], edges[8]["censored"]) == (1e-3, 1e-2, None)
    assert edges[8]["edge"] == pytest.approx(math.sqrt(1e-3 * 1e-2)) and edges[8]["slice"] == {}
    assert (edges[32]["lo"], edges[32]["hi"]) == (1e-2, 1e-1)
    (fit,) = out["fits"]
    assert fit["n_points"] == 2 and set(fit) == {
        "optimizer",
        "slope",
        "ci",
        "intercept",
        "expected",
        "n_points",
        "reference",
    }


def test_compact_region_replaces_config_lists_by_counts() -> None:
    region = {
        "x": "lr",
        "cells": [[None, {"rate": 1.0, "config_ids": [4]}], [{"rate": 0.5, "config_ids": [1, 2]}, None]],
    }
    out = plots.compact_region(region)
    assert out["x"] == "lr" and region["cells"][0][1]["config_ids"] == [4]  # the input is left alone
    assert out["cells"] == [
        [None, {"rate": 1.0, "n_configs": 1, "config_id": 4}],
        [{"rate": 0.5, "n_configs": 2, "config_id": None}, None],
    ]


def test_seed_band_is_over_stable_seeds_and_failed_seeds_are_drawn_apart() -> None:
    runs = [
        _run(1, "converged"),
        _run(2, "slow"),
        _run(3, "noisy"),
        _run(4, "diverged", status=RunStatus.NONFINITE),
        _run(5, None, status=RunStatus.RUNNING),
        _run(6, "converged", status=RunStatus.CANCELLED),
    ]
    curves = {
        1: _curve([1.0, 0.5, 0.25]),
        2: _curve([1.0, 0.7, 0.6]),
        3: _curve([1.0, 0.9]),  # stopped early: the band at epoch 2 has two seeds
        4: _curve([1.0, math.inf, math.nan]),
    }
    out = plots.seed_band(runs, curves)
    band = out["band"]
    assert band["epochs"] == [0, 1, 2] and band["n_stable"] == 3
    assert band["loss"]["median"] == pytest.approx([1.0, 0.7, 0.425])
    assert band["loss"]["q25"][1] == pytest.approx(0.6) and band["loss"]["q75"][1] == pytest.approx(0.8)
    assert [s["run_id"] for s in out["stable"]] == [1, 2, 3]
    (failed,) = out["failed"]
    assert failed == {
        "run_id": 4,
        "seed": 4,
        "run_class": "diverged",
        "epochs": [0, 1, 2],
        "loss": [1.0, None, None],
        "accuracy": [0.5] * 3,
    }
    assert (out["n_failed"], out["n_unfinished"]) == (1, 2)
    sampled = plots.seed_band(runs[:1], {1: _curve([float(e) for e in range(100)])}, max_points=10)
    assert len(sampled["band"]["epochs"]) == 10 and sampled["stable"][0]["epochs"][-1] == 99


def test_seed_band_draws_at_most_32_seeds() -> None:
    runs = [_run(i, "converged") for i in range(40)]
    out = plots.seed_band(runs, {i: _curve([1.0]) for i in range(40)})
    assert len(out["stable"]) == plots.MAX_DRAWN_SEEDS and out["band"]["n_stable"] == 40


def test_run_curves_sample_epochs_and_steps() -> None:
    points = [replace(p, grad_norm=math.inf) for p in _curve([1.0, 0.5, math.nan])]
    out = plots.run_curves(points, [(0, 1.0), (10, math.nan)])
    assert out["epoch"]["epoch"] == [0, 1, 2] and out["epoch"]["loss"] == [1.0, 0.5, None]
    assert out["epoch"]["grad_norm"] == [None] * 3 and out["epoch"]["running_loss"] == [None] * 3
    assert out["steps"] == {"step": [0, 10], "loss": [1.0, None], "n": 2}
    assert plots.run_curves(points, None)["steps"] is None
    many = plots.run_curves(_curve([1.0] * 50), [(i, 1.0) for i in range(50)], max_points=5)
    assert len(many["epoch"]["epoch"]) == 5 and len(many["steps"]["step"]) == 10 and many["steps"]["n"] == 50
