"""The report's JSON form: keys, their order and the ones left out are part of the contract."""

from __future__ import annotations

import json

from service.core.analysis.diagnosis import (
    DimensionEffect,
    Failure,
    Remedy,
    Report,
    SeedDependence,
    StableRegion,
)


def test_seed_dependence_without_runs_leaves_out_what_it_cannot_know() -> None:
    empty = SeedDependence(
        n_configs=0, share_mixed=None, mean_wilson_width=None, text="No finished runs yet."
    )
    assert list(empty.to_dict()) == ["n_configs", "share_mixed", "mean_wilson_width", "text"]
    full = SeedDependence(3, 0.5, 0.4, "t", seeds_per_config=4, seed_components={"init": 0.9, "data": None})
    assert list(full.to_dict()) == [
        "n_configs",
        "seeds_per_config",
        "share_mixed",
        "mean_wilson_width",
        "seed_components",
        "text",
    ]


def test_report_serialises_its_sections_in_order() -> None:
    report = Report(
        headline="h",
        stable_region=(StableRegion({"batch_size": 8}, (0.001, 0.01), 0.03, (0.01, 0.1), None, 0.01, "s"),),
        failures=(Failure("diverged", 2, 0.5, {"above": 2}, "f"),),
        dimension_effects=(DimensionEffect("batch_size", 0.25, 2, ((8, 0.5), (32, 0.75))),),
        seed_dependence=SeedDependence(0, None, None, "none"),
        scaling=(),
        sensitivity=(),
        remedies=(Remedy("r", "e"),),
        num_classes=2,
    )
    assert json.dumps(report.to_dict()) == (
        '{"headline": "h", "stable_region": [{"group": {"batch_size": 8}, "stable_lrs": [0.001, 0.01], '
        '"edge": 0.03, "bracket": [0.01, 0.1], "censored": null, "bound": null, "best_lr": 0.01, '
        '"text": "s"}], '
        '"failures": [{"run_class": "diverged", "runs": 2, "share": 0.5, "where": {"above": 2}, '
        '"text": "f"}], '
        '"dimension_effects": [{"dim": "batch_size", "effect": 0.25, "matched_slices": 2, '
        '"by_value": [[8, 0.5], [32, 0.75]]}], "seed_dependence": {"n_configs": 0, "share_mixed": null, '
        '"mean_wilson_width": null, "text": "none"}, "scaling": [], "sensitivity": [], '
        '"remedies": [{"remedy": "r", "evidence": "e"}], "num_classes": 2}'
    )


def test_a_censored_edge_is_no_number() -> None:
    above = StableRegion({"batch_size": 8}, (0.001, 0.01), 0.01, (0.01, None), "above", 0.01, "s")
    below = StableRegion({"batch_size": 8}, None, None, (None, 1e-4), "below", None, "s")
    assert above.to_dict()["edge"] is None and above.to_dict()["bound"] == 0.01
    assert below.to_dict()["edge"] is None and below.to_dict()["bound"] == 1e-4
