"""The analysis views from hand-made rows: filters, one configuration, regions, the edge with refinement."""

from __future__ import annotations

import pytest

from service.core.errors import InvalidSpec
from service.core.results.sweep_data import SweepData, build_data
from service.core.results.views import config_detail, configs_view, edge_view, region_view
from tests.core.results.rows import row, sweep_record

LRS = (0.001, 0.01, 0.1)


def _data(refined: bool = False) -> SweepData:
    """lr x batch; lr 0.1 diverges, lr 0.01 at batch 4 is decided by the seed; optionally one refinement."""
    rows = []
    cid = 0
    for bs in (4, 16):
        for lr in LRS:
            cid += 1
            for s in range(2):
                cls = "diverged" if lr == 0.1 or (lr == 0.01 and bs == 4 and s == 1) else "converged"
                rows.append(row(10 * cid + s, cid, {"learning_rate": lr, "batch_size": bs}, cls, seed=s))
    if refined:
        rows += [
            row(900 + s, 90, {"learning_rate": 0.03, "batch_size": 16}, "converged", seed=s) for s in (0, 1)
        ]
    spec = {"refine_edge": {"rounds": 2}} if refined else {}
    return build_data(sweep_record(spec, refine_round=1 if refined else 0), rows, {90: 1} if refined else {})


def test_configs_filter_by_class_success_and_params() -> None:
    data = _data()
    assert len(configs_view(data)) == 6
    assert [c["config_id"] for c in configs_view(data, run_class="diverged")] == [2, 3, 6]
    assert [c["config_id"] for c in configs_view(data, min_success=0.4, max_success=0.6)] == [2]
    assert [c["config_id"] for c in configs_view(data, filters={"batch_size": "16"})] == [4, 5, 6]
    assert configs_view(data)[0]["summary"]["n"] == 2


def test_config_detail_splits_seeds_and_knows_unfinished_configs() -> None:
    detail = config_detail(_data(), 2)
    assert detail is not None and detail["params"] == {"learning_rate": 0.01, "batch_size": 4}
    # Seeds 0 and 1 share init seed 0 and differ in data order, which decides the outcome.
    assert {k: (v["n"], v["successes"]) for k, v in detail["by_init_seed"].items()} == {0: (2, 1)}
    assert {k: (v["n"], v["successes"]) for k, v in detail["by_data_seed"].items()} == {0: (1, 1), 1: (1, 0)}
    assert config_detail(_data(), 99) is None


def test_region_matches_query_text_to_the_sweep_values() -> None:
    data = _data()
    region = region_view(data, x="learning_rate", y="batch_size", fixed={})
    assert region["x_values"] == list(LRS) and region["y_values"] == [4, 16]
    sliced = region_view(data, x="learning_rate", y="batch_size", fixed={"batch_size": "16.0"})
    assert sliced["y_values"] == [16] and [e["group"]["batch_size"] for e in sliced["edges"]] == [16]
    with pytest.raises(InvalidSpec, match="choose one of batch_size, learning_rate"):
        region_view(data, x="beta_1", y="batch_size", fixed={})
    with pytest.raises(InvalidSpec, match="not one of this sweep's values"):
        region_view(data, x="learning_rate", y="batch_size", fixed={"batch_size": "5"})
    empty = build_data(sweep_record(), [])
    assert region_view(empty, x="a", y="b", fixed={"c": 1})["cells"] == []


def test_edge_reports_what_refinement_added() -> None:
    plain = edge_view(_data())
    assert plain["refinement"] == {"configs_added": 0, "runs_added": 0, "grid_configs": 6}
    refined = edge_view(_data(refined=True))
    assert refined["refine_round"] == 1 and refined["refine_rounds_requested"] == 2
    assert refined["refinement"] == {"configs_added": 1, "runs_added": 2, "grid_configs": 6}
    by_batch = {e["group"]["batch_size"]: e for e in refined["edges"]}
    assert by_batch[16]["trials_added_by_refinement"] == 1 and by_batch[4]["trials_added_by_refinement"] == 0
    assert by_batch[16]["grid"]["bracket"] == [0.01, 0.1] and by_batch[16]["bracket"] == [0.03, 0.1]
