"""LayerNormalization in a pack: each replica equals its lone Keras run, gradient included."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import pack_vs_lone_runs
from workers.training._stacked_model import Unpackable, plan_model
from workers.workloads.base import Dataset


class TinyNorm:
    """Dense -> LayerNormalization -> Dense(softmax); the first norm reads the (shared) input."""

    name = "tiny_norm"
    loss = "sparse_categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def __init__(self, **norm: Any) -> None:
        self.norm = norm

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(5)
        x = rng.normal(size=(36, 3, 4)).astype(np.float32) * 2 + 1
        y = (x[:, 0, :2].sum(axis=1) > 2).astype(np.int32) + (x[:, 1, 0] > 1)
        return Dataset(x[:28], y[:28], x[28:], y[28:])

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((3, 4)),
                L.LayerNormalization(**self.norm),
                L.Dense(6, activation="tanh"),
                L.LayerNormalization(**self.norm),
                L.Flatten(),
                L.Dense(3, activation="softmax"),
            ]
        )


@pytest.mark.parametrize(
    "norm",
    [{}, {"rms_scaling": True}, {"center": False, "epsilon": 1e-2}],
    ids=["default", "rms", "scale-only"],
)
def test_layer_norm_replicas_equal_lone_runs(norm: dict[str, Any]) -> None:
    assert pack_vs_lone_runs(TinyNorm(**norm)) < 1e-4


def test_layer_norm_over_other_axes_is_unpackable() -> None:
    model = keras.Sequential([keras.Input((3, 4)), keras.layers.LayerNormalization(axis=1)])
    with pytest.raises(Unpackable, match="normalises axes"):
        plan_model(model)
