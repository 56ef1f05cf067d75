"""Region maps: shape, missing cells, pooling, the beta plane."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest

from service.core.analysis.regions import (
    ConfigPoint,
    available_dimensions,
    beta_plane,
    region_matrix,
)
from service.core.analysis.seeds import RunSummary, summarize_config
from service.core.errors import InvalidSpec


def point(cid: int, classes: list[str], **params: Any) -> ConfigPoint:
    runs = [RunSummary(s, s, s, c, final_loss=0.1 * (s + 1), l0=2.0) for s, c in enumerate(classes)]
    return ConfigPoint(cid, params, summarize_config(runs))


OK, BAD = ["converged"] * 3, ["diverged"] * 3


def grid() -> list[ConfigPoint]:
    pts = []
    cid = 0
    for lr in (1e-4, 1e-3, 1e-2):
        for bs in (8, 32):
            for b1 in (0.5, 0.9):
                cid += 1
                cls = BAD if (lr == 1e-2 or (lr == 1e-3 and b1 == 0.5)) else OK
                pts.append(point(cid, cls, learning_rate=lr, batch_size=bs, beta_1=b1))
    return pts


def test_region_shape_and_cells_at_a_fixed_slice() -> None:
    r = region_matrix(grid(), "learning_rate", "batch_size", {"beta_1": 0.9})
    assert r.x_values == (1e-4, 1e-3, 1e-2) and r.y_values == (8, 32)
    assert len(r.cells) == 2 and all(len(row) == 3 for row in r.cells)
    assert r.pooled_over == () and r.n_configs == 6
    c = r.cells[1][2]
    assert c is not None and c.x == 1e-2 and c.y == 32 and c.success_rate == 0.0
    assert c.dominant_class == "diverged" and c.class_mix == {"diverged": 3} and not c.pooled
    ok = r.cells[0][1]
    assert ok is not None and ok.success_rate == 1.0
    json.dumps(r.to_dict(), allow_nan=False)


def test_region_pools_unfixed_dimensions() -> None:
    r = region_matrix(grid(), "learning_rate", "batch_size")
    assert r.pooled_over == ("beta_1",)
    c = r.cells[0][1]  # lr 1e-3, batch 8: beta_1 0.5 fails, 0.9 trains
    assert c is not None and c.pooled and c.n == 6 and c.successes == 3 and len(c.config_ids) == 2
    assert c.class_mix == {"diverged": 3, "converged": 3}


def test_region_missing_cells_are_none() -> None:
    pts = [p for p in grid() if not (p.params["learning_rate"] == 1e-4 and p.params["batch_size"] == 8)]
    r = region_matrix(pts, "learning_rate", "batch_size", {"beta_1": 0.5})
    assert r.cells[0][0] is None and r.cells[1][0] is not None


def test_region_rejects_unknown_dimensions() -> None:
    with pytest.raises(InvalidSpec, match="'momentum' not swept"):
        region_matrix(grid(), "learning_rate", "momentum")
    with pytest.raises(InvalidSpec):
        region_matrix(grid(), "learning_rate", "learning_rate")
    empty = region_matrix(grid(), "learning_rate", "batch_size", {"beta_1": 0.7})
    assert empty.cells == () and empty.n_configs == 0


def test_points_without_a_dimension_are_left_out() -> None:
    pts = [*grid(), point(99, OK, learning_rate=1e-3, batch_size=8, optimizer="sgd")]
    r = region_matrix(pts, "beta_1", "learning_rate")
    assert 99 not in {i for row in r.cells for c in row if c for i in c.config_ids}


def test_available_dimensions() -> None:
    pts = [point(1, OK, learning_rate=1e-3, batch_size=8), point(2, OK, learning_rate=1e-2, batch_size=8)]
    assert available_dimensions(pts) == {"learning_rate": [1e-3, 1e-2]}


def test_beta_plane_marks_zhang_condition() -> None:
    pts = [
        point(i, OK, learning_rate=1e-3, beta_1=b1, beta_2=b2)
        for i, (b1, b2) in enumerate((b1, b2) for b1 in (0.5, 0.9, 0.99) for b2 in (0.9, 0.999))
    ]
    plane = beta_plane(pts, {"learning_rate": 1e-3})
    assert plane.region.x == "beta_1" and plane.region.y == "beta_2"
    # sqrt(0.9) = 0.9487: beta_1 = 0.99 is above the curve at beta_2 = 0.9 and 0.999 (0.9995).
    assert plane.below_curve == ((True, True, False), (True, True, True))
    xs, ys = zip(*plane.reference_curve, strict=True)
    assert ys[0] == 0.9 and ys[-1] == pytest.approx(0.999)
    assert all(x == pytest.approx(math.sqrt(y)) for x, y in plane.reference_curve)
    json.dumps(plane.to_dict(), allow_nan=False)


def test_region_scales_to_thousands_of_configs() -> None:
    # ~2,000 configurations x 5 seeds; the bound is loose (shared CI machines), the
    # measured time is ~10-20 ms.
    pts = []
    cid = 0
    for lr in [1e-5 * 1.5**i for i in range(20)]:
        for bs in (2, 4, 8, 16, 32):
            for b1 in (0.5, 0.8, 0.9, 0.95):
                for b2 in (0.99, 0.999, 0.9999, 0.95, 0.9):
                    cid += 1
                    pts.append(
                        point(
                            cid,
                            ["converged", "noisy", "diverged", "slow", "converged"],
                            learning_rate=lr,
                            batch_size=bs,
                            beta_1=b1,
                            beta_2=b2,
                        )
                    )
    start = time.perf_counter()
    r = region_matrix(pts, "learning_rate", "batch_size", {"beta_1": 0.9, "beta_2": 0.999})
    assert time.perf_counter() - start < 2.0
    assert len(r.cells) == 5 and r.n_configs == 100


def fluct_point(cid: int, lr: float, bs: int, indices: list[float]) -> ConfigPoint:
    runs = [
        RunSummary(s, s, s, "noisy", final_loss=0.5, fluctuation={"fluctuation": v, "spikes": float(s)})
        for s, v in enumerate(indices)
    ]
    return ConfigPoint(cid, {"learning_rate": lr, "batch_size": bs}, summarize_config(runs))


def test_region_coloured_by_fluctuation_carries_median_and_iqr() -> None:
    pts = [
        fluct_point(1, 1e-3, 2, [0.4, 0.5, 0.6, 0.7]),
        fluct_point(2, 1e-3, 32, [0.1, 0.1, 0.2, 0.3]),
    ]
    reg = region_matrix(pts, "learning_rate", "batch_size", metric="fluctuation")
    assert reg.metric == "fluctuation"
    small, large = reg.cells[0][0], reg.cells[1][0]
    assert small is not None and large is not None
    assert small.value == pytest.approx(0.55) and large.value == pytest.approx(0.15)
    assert small.fluctuation["fluctuation"].iqr == pytest.approx(0.15)
    assert small.fluctuation["spikes"].median == pytest.approx(1.5)
    d = reg.to_dict()
    assert d["metric"] == "fluctuation" and d["cells"][0][0]["fluctuation"]["fluctuation"]["median"] == 0.55
    # The default colour is the success rate, and the fluctuation rides along.
    default = region_matrix(pts, "learning_rate", "batch_size")
    assert default.cells[0][0] is not None and default.cells[0][0].value == 1.0
    assert default.cells[0][0].fluctuation["fluctuation"].median == pytest.approx(0.55)
    assert region_matrix(pts, "learning_rate", "batch_size", metric="final_loss").cells[0][0].value == 0.5  # type: ignore[union-attr]


def test_unknown_region_metric_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidSpec) as err:
        region_matrix(grid(), "learning_rate", "batch_size", metric="wobble")
    for name in ("success", "fluctuation", "final_loss", "spikes"):
        assert name in str(err.value)
