"""workers/training/training_data.py: a workload's data as trainers take it: float32 inputs, typed labels."""

from __future__ import annotations

import numpy as np

from workers.training.training_data import load_training_data
from workers.workloads.registry import build_preset


def test_integer_labels_become_int32_and_validation_comes_along() -> None:
    w = build_preset("pixel_color", {"image_size": 4, "n_train_per_class": 3, "n_val_per_class": 5})
    data = load_training_data(w)
    ds = w.dataset()
    assert data.kind == "integer" and data.n == len(ds.y_train) == 6
    assert data.x.dtype.name == "float32" and data.y.dtype.name == "int32" and tuple(data.y.shape) == (6,)
    np.testing.assert_array_equal(data.y.numpy(), ds.y_train)
    assert data.x_val is not None and data.y_val is not None and data.y_val.dtype.name == "int32"
    assert data.n_eval_max == len(ds.y_val) == 10  # the validation set is the larger one here


def test_one_hot_and_regression_targets_stay_float_and_no_validation_is_none() -> None:
    hot = load_training_data(build_preset("sensor_lstm", {"n_train": 12, "n_val": 0, "timesteps": 5}))
    assert hot.kind == "one_hot" and hot.y.dtype.name == "float32" and tuple(hot.y.shape) == (12, 6)
    assert hot.x_val is None and hot.y_val is None and hot.n_eval_max == 12
    mse = load_training_data(build_preset("least_squares", {"n": 6, "d": 2}))
    assert mse.kind == "regression" and mse.y.dtype.name == "float32" and mse.n == 6
