"""Stacked Conv1D/Conv2D: equal to K lone Keras layers, forward and gradient, and in a pack."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import OTHERS, TARGET, max_rel
from tests.workers.training.stacked_checks import assert_matches_keras
from workers.training._stacked_conv import conv_formulation
from workers.training._stacked_model import Unpackable, plan_model
from workers.training.interface import NullObserver, ReplicaResult
from workers.training.packs import PackTrainer
from workers.training.single import SingleTrainer
from workers.workloads.base import Dataset

L = keras.layers
X2 = np.random.default_rng(0).normal(size=(5, 7, 6, 2)).astype(np.float32)
X1 = np.random.default_rng(1).normal(size=(5, 9, 3)).astype(np.float32)


@pytest.mark.parametrize("xla_path", [False, True], ids=["grouped", "matmul"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"padding": "same"},
        {"strides": (2, 1), "padding": "same"},
        {"dilation_rate": 2},
        {"use_bias": False, "activation": "relu"},
    ],
)
def test_conv2d_equals_keras(options: dict[str, Any], xla_path: bool) -> None:
    def build() -> Any:
        return keras.Sequential(
            [
                keras.Input((7, 6, 2)),
                L.Conv2D(4, 3, **options),
                L.Conv2D(3, 2, activation="tanh"),
                L.Flatten(),
                L.Dense(2),
            ]
        )

    assert_matches_keras(build, X2, xla_path=xla_path)


@pytest.mark.parametrize("xla_path", [False, True], ids=["grouped", "matmul"])
@pytest.mark.parametrize(
    "options", [{}, {"padding": "causal", "dilation_rate": 2}, {"padding": "same", "strides": 2}]
)
def test_conv1d_equals_keras(options: dict[str, Any], xla_path: bool) -> None:
    def build() -> Any:
        return keras.Sequential([keras.Input((9, 3)), L.Conv1D(4, 3, **options), L.Conv1D(2, 2), L.Flatten()])

    assert_matches_keras(build, X1, xla_path=xla_path)


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (L.Conv1D(2, 3, data_format="channels_first"), "channels_last"),
        (L.Conv1D(4, 3, groups=2), "groups=1"),
        (L.SeparableConv1D(2, 3), "SeparableConv1D"),
        (L.Conv1DTranspose(2, 3), "Conv1DTranspose"),
    ],
)
def test_unsupported_options_say_why(layer: Any, reason: str) -> None:
    model = keras.Sequential([keras.Input((8, 4)), layer, L.Flatten()])
    with pytest.raises(Unpackable, match=reason):
        plan_model(model)


def test_variable_length_inputs_say_why() -> None:
    model = keras.Sequential([keras.Input((None, 3)), L.Conv1D(2, 3), L.GlobalMaxPooling1D()])
    with pytest.raises(Unpackable, match="unknown size"):
        plan_model(model)


def test_formulation_by_device() -> None:
    # CPU figures in _stacked_conv's docstring: grouped without XLA, matmul under XLA.
    assert conv_formulation(xla=False) == "grouped"
    assert conv_formulation(xla=True) == "matmul"


class TinyCNN:
    """A CNN in miniature: two Conv2D (same padding, then strides) -> Flatten -> Dense, integer labels."""

    name = "tiny_cnn"
    loss = "sparse_categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(4)
        x = rng.normal(size=(28, 6, 6, 2)).astype(np.float32)
        y = (x[:, :3, :3, 0].mean(axis=(1, 2)) > 0).astype(np.int32) + (x[:, 3:, 3:, 1].mean(axis=(1, 2)) > 0)
        return Dataset(x[:20], y[:20].astype(np.int32), x[20:], y[20:].astype(np.int32))

    def build_model(self) -> Any:
        return keras.Sequential(
            [
                keras.Input((6, 6, 2)),
                L.Conv2D(4, 3, padding="same", activation="relu"),
                L.Conv2D(4, 3, strides=2, activation="relu"),
                L.Flatten(),
                L.Dense(3, activation="softmax"),
            ]
        )


@pytest.fixture(scope="module")
def lone_cnn_runs() -> list[ReplicaResult]:
    return SingleTrainer().train(TinyCNN(), CNN_SPECS, 3, NullObserver())


CNN_SPECS = [OTHERS[0], TARGET, OTHERS[1]]


# Under XLA the epoch compiles for ~10 s on the 2-core CPU: slow.
@pytest.mark.parametrize(
    "jit", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["grouped", "xla-matmul"]
)
def test_cnn_pack_of_three_equals_three_lone_runs(jit: bool, lone_cnn_runs: list[ReplicaResult]) -> None:
    packed = PackTrainer(jit_compile=jit).train(TinyCNN(), CNN_SPECS, 3, NullObserver())
    for s, p in zip(lone_cnn_runs, packed, strict=True):
        assert p.status == "completed"
        assert max_rel(s, p) < 1e-4
