"""workers/workloads/presets/_common.py: class counts, one-hot labels, and what every preset shares."""

from __future__ import annotations

import numpy as np

from service.core.workloads import PRESETS
from workers.workloads.presets import LeastSquares
from workers.workloads.presets._common import balanced_counts, one_hot


def test_balanced_counts_give_the_remainder_to_the_first_classes() -> None:
    assert balanced_counts(98, 6) == [17, 17, 16, 16, 16, 16]
    assert balanced_counts(12, 4) == [3, 3, 3, 3]
    assert balanced_counts(2, 3) == [1, 1, 0]


def test_one_hot() -> None:
    out = one_hot(np.array([2, 0, 1]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def test_a_preset_takes_the_catalogues_defaults_and_builds_its_data_once() -> None:
    w = LeastSquares({"n": 8, "d": 2})
    info = PRESETS["least_squares"]
    assert (w.loss, w.num_classes) == (info.loss, info.num_classes)
    assert w.params["n"] == 8 and set(info.params) <= set(w.params) | {"data_seed"}
    w.default_params["extra"] = 1
    assert "extra" not in info.default_params  # a copy: one preset cannot change the catalogue
    assert w.dataset() is w.dataset()
    assert repr(w).startswith("LeastSquares({") and "'n': 8" in repr(w)
