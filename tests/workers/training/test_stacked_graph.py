"""Functional models in a pack: DAGs of supported layers joined by merge layers.

Each replica of a pack of 3 different ones equals its lone Keras run (losses,
validation loss and gradient norm per epoch); graphs packs cannot follow
raise ``Unpackable`` with the reason.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import pack_vs_lone_runs
from workers.training._layer_plan import MODEL_INPUT
from workers.training._stacked_model import Unpackable, plan_model
from workers.workloads.base import Dataset

L = keras.layers


class ResidualMLP:
    """x -> Dense -> Dense -> Add([h1, h2]) -> Dense(softmax): the issue's residual MLP."""

    name = "residual_mlp"
    loss = "sparse_categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(7)
        x = rng.normal(size=(36, 5)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0.5)
        return Dataset(x[:28], y[:28], x[28:], y[28:])

    def build_model(self) -> Any:
        x = keras.Input((5,))
        h1 = L.Dense(8, activation="relu")(x)
        h2 = L.Dense(8)(h1)
        return keras.Model(x, L.Dense(3, activation="softmax")(L.Add()([h1, h2])))


class EveryMerge(ResidualMLP):
    """Every merge layer, and branches that read the shared model input (Concatenate([x, h]))."""

    name = "every_merge"

    def build_model(self) -> Any:
        x = keras.Input((5,))
        a = L.Dense(6, activation="tanh")(x)
        b = L.Dense(6, activation="sigmoid")(a)
        s = L.Subtract()([L.Add()([a, b]), L.Multiply()([a, b])])
        m = L.Maximum()([L.Minimum()([s, a]), b])
        c = L.Concatenate()([x, m, L.Dense(2)(x)])
        avg = L.Average()([L.Dense(4)(c), L.Dense(4, activation="relu")(c)])
        return keras.Model(x, L.Dense(3, activation="softmax")(avg))


@pytest.mark.parametrize("workload", [ResidualMLP(), EveryMerge()], ids=lambda w: w.name)
def test_functional_replicas_equal_lone_runs(workload: Any) -> None:
    assert pack_vs_lone_runs(workload) < 1e-4


def test_plan_records_the_graph() -> None:
    plan, weights = plan_model(ResidualMLP().build_model())
    assert [p.kind for p in plan.layers] == ["dense", "dense", "merge", "dense"]
    assert [p.inputs for p in plan.layers] == [(), (), (0, 1), ()]  # chain links stay empty
    assert plan.layers[2].out_shape == (8,)
    assert [w.shape for w in weights] == [s for s in plan.weight_shapes]
    # A Sequential model is the one-path case: every link reads the one before.
    seq = keras.Sequential([keras.Input((5,)), L.Dense(4), L.Dense(2)])
    assert [p.inputs for p in plan_model(seq)[0].layers] == [(), ()]
    branch = keras.Input((5,))
    model = keras.Model(branch, L.Concatenate()([branch, L.Dense(3)(branch)]))
    assert plan_model(model)[0].layers[1].inputs == (MODEL_INPUT, 0)


def _model(build: Any) -> Any:
    x = keras.Input((4,))
    return keras.Model(x, build(x))


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (
            lambda: keras.Model(
                [i := keras.Input((3,)), j := keras.Input((3,))], L.Dense(1)(L.Add()([i, j]))
            ),
            "more than one input or output",
        ),
        (lambda: _model(lambda x: [L.Dense(1)(x), L.Dense(2)(x)]), "more than one input or output"),
        (lambda: _model(lambda x: (d := L.Dense(4))(d(x))), "called more than once"),
        (lambda: _model(lambda x: L.Dense(1)(keras.ops.exp(x))), "not a layer packs support"),
        (
            lambda: _model(lambda x: L.Add()([L.Dense(2)(x), L.Reshape((2, 1))(L.Dense(2)(x))])),
            "different ranks|Reshape",
        ),
        (lambda: _model(lambda x: L.Concatenate(axis=0)([L.Dense(2)(x), L.Dense(2)(x)])), "batch axis"),
    ],
    ids=["two-inputs", "two-outputs", "shared-layer", "raw-op", "ranks", "batch-concat"],
)
def test_graphs_packs_cannot_follow_are_unpackable(model: Any, reason: str) -> None:
    with pytest.raises(Unpackable, match=reason):
        plan_model(model())


class _Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.dense = L.Dense(2)

    def call(self, x: Any) -> Any:
        return self.dense(x)


def test_subclassed_model_is_unpackable() -> None:
    model = _Subclassed()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(Unpackable, match="no layer graph"):
        plan_model(model)
