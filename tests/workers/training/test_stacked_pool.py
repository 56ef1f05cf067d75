"""Stacked pooling, Reshape and Permute: equal to K lone Keras layers, forward and gradient, and in a pack."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import OTHERS, TARGET, max_rel
from tests.workers.training.stacked_checks import assert_matches_keras
from workers.training._stacked_model import Unpackable, plan_model
from workers.training.interface import NullObserver
from workers.training.packs import PackTrainer
from workers.training.single import SingleTrainer
from workers.workloads.base import Dataset

L = keras.layers
X2 = np.random.default_rng(0).normal(size=(5, 7, 6, 2)).astype(np.float32)
X1 = np.random.default_rng(1).normal(size=(5, 9, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "middle",
    [
        lambda: [L.MaxPooling2D()],
        lambda: [L.MaxPooling2D(3, strides=2, padding="same")],
        lambda: [L.AveragePooling2D((2, 3), padding="same")],
        lambda: [L.AveragePooling2D(2, strides=1)],
        lambda: [L.GlobalAveragePooling2D()],
        lambda: [L.GlobalMaxPooling2D(keepdims=True), L.Flatten()],
        lambda: [L.Reshape((-1, 4))],
        lambda: [L.Permute((3, 1, 2))],
    ],
    ids=["max", "max-same-s2", "avg-same", "avg-s1", "gap", "gmp-keepdims", "reshape", "permute"],
)
def test_2d_shape_layers_equal_keras(middle: Any) -> None:
    def build() -> Any:
        return keras.Sequential(
            [keras.Input((7, 6, 2)), L.Conv2D(4, 2, activation="relu"), *middle(), L.Flatten(), L.Dense(2)]
        )

    assert_matches_keras(build, X2)


@pytest.mark.parametrize(
    "middle",
    [
        lambda: [L.MaxPooling1D()],
        lambda: [L.AveragePooling1D(3, strides=2, padding="same")],
        lambda: [L.GlobalAveragePooling1D()],
        lambda: [L.GlobalMaxPooling1D()],
        lambda: [L.Permute((2, 1))],
    ],
    ids=["max", "avg-same", "gap", "gmp", "permute"],
)
def test_1d_shape_layers_equal_keras(middle: Any) -> None:
    def build() -> Any:
        return keras.Sequential([keras.Input((9, 3)), L.Conv1D(4, 2), *middle(), L.Flatten(), L.Dense(2)])

    assert_matches_keras(build, X1)


def test_shape_layers_on_the_shared_input_stay_shared() -> None:
    def build() -> Any:
        return keras.Sequential(
            [
                keras.Input((7, 6, 2)),
                L.Permute((2, 1, 3)),
                L.AveragePooling2D(2),
                L.Reshape((-1,)),
                L.Dense(3),
            ]
        )

    assert_matches_keras(build, X2)


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (lambda: L.MaxPooling1D(data_format="channels_first"), "channels_last"),
        (lambda: L.GlobalAveragePooling1D(data_format="channels_first"), "channels_last"),
        (lambda: L.Cropping1D(1), "Cropping1D"),
    ],
)
def test_unsupported_say_why(layer: Any, reason: str) -> None:
    model = keras.Sequential([keras.Input((8, 4)), layer(), L.Flatten(), L.Dense(1)])
    with pytest.raises(Unpackable, match=reason):
        plan_model(model)


class TinyPooledCNN:
    """Conv2D -> MaxPooling2D -> Conv2D -> GlobalAveragePooling2D -> Dense(softmax), one-hot labels."""

    name = "tiny_pooled_cnn"
    loss = "categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(5)
        x = rng.normal(size=(28, 8, 8, 1)).astype(np.float32)
        labels = (x[:, :4, :, 0].mean(axis=(1, 2)) > 0).astype(int) + (x[:, :, :4, 0].mean(axis=(1, 2)) > 0)
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:20], y[:20], x[20:], y[20:])

    def build_model(self) -> Any:
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                L.Conv2D(4, 3, padding="same", activation="relu"),
                L.MaxPooling2D(),
                L.Conv2D(4, 3, activation="relu"),
                L.GlobalAveragePooling2D(),
                L.Dense(3, activation="softmax"),
            ]
        )


def test_pooled_cnn_pack_of_three_equals_three_lone_runs() -> None:
    wl = TinyPooledCNN()
    specs = [OTHERS[0], TARGET, OTHERS[1]]
    single = SingleTrainer().train(wl, specs, 3, NullObserver())
    packed = PackTrainer().train(wl, specs, 3, NullObserver())
    for s, p in zip(single, packed, strict=True):
        assert p.status == "completed"
        assert max_rel(s, p) < 1e-4
