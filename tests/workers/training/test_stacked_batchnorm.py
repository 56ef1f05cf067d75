"""Stacked BatchNormalization: per-replica batch statistics and moving averages, as K lone Keras layers."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import BAD, OTHERS, TARGET, max_rel
from tests.workers.training.stacked_checks import assert_matches_keras
from workers.training._stacked_model import Unpackable, plan_model
from workers.training.interface import NullObserver, ReplicaResult
from workers.training.packs import PackTrainer
from workers.training.single import SingleTrainer
from workers.workloads.base import Dataset

L = keras.layers
X2 = np.random.default_rng(0).normal(size=(6, 5, 4, 2)).astype(np.float32)
X1 = np.random.default_rng(1).normal(loc=2.0, size=(6, 3)).astype(np.float32)


def _with_moved_statistics(model: Any) -> Any:
    """Moving statistics away from Keras' (0, 1) start, so that inference tests them."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape
            layer.moving_mean.assign(keras.random.normal(n))
            layer.moving_variance.assign(keras.random.uniform(n, 0.5, 2.0))
    return model


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9, "epsilon": 1e-2},
        {"center": False},
        {"scale": False},
        {"center": False, "scale": False},
    ],
)
def test_batch_norm_after_conv_equals_keras(options: dict[str, Any]) -> None:
    def build() -> Any:
        return _with_moved_statistics(
            keras.Sequential(
                [
                    keras.Input((5, 4, 2)),
                    L.Conv2D(3, 2),
                    L.BatchNormalization(**options),
                    L.Activation("relu"),
                    L.Flatten(),
                    L.Dense(2),
                ]
            )
        )

    assert_matches_keras(build, X2)


def test_batch_norm_on_the_input_and_between_dense_layers_equals_keras() -> None:
    def build() -> Any:
        return _with_moved_statistics(
            keras.Sequential(
                [
                    keras.Input((3,)),
                    L.BatchNormalization(),
                    L.Dense(4, activation="tanh"),
                    L.BatchNormalization(momentum=0.5),
                    L.Dense(2),
                ]
            )
        )

    plan = assert_matches_keras(build, X1)
    assert plan.trainable_mask == [True, True, False, False, True, True, True, True, False, False, True, True]


@pytest.mark.parametrize(
    ("layer", "reason"),
    [
        (lambda: L.BatchNormalization(axis=1), "last axis"),
        (lambda: L.BatchNormalization(gamma_regularizer="l2"), "gamma regularizer"),
        (lambda: L.BatchNormalization(renorm=True), "renormalization"),
    ],
)
def test_unsupported_options_say_why(layer: Any, reason: str) -> None:
    model = keras.Sequential([keras.Input((4, 3)), layer(), L.Flatten(), L.Dense(1)])
    with pytest.raises(Unpackable, match=reason):
        plan_model(model)


class TinyBatchNormCNN:
    """Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D -> Flatten -> Dense(softmax), integer labels."""

    name = "tiny_bn_cnn"
    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(6)
        x = rng.normal(loc=1.0, scale=2.0, size=(30, 6, 6, 1)).astype(np.float32)
        y = (x[:, :3, :, 0].mean(axis=(1, 2)) > 1.0).astype(np.int32)
        return Dataset(x[:22], y[:22], x[22:], y[22:])  # 22: a short last batch of 6

    def build_model(self) -> Any:
        return keras.Sequential(
            [
                keras.Input((6, 6, 1)),
                # No bias before the normalisation (as usual): its gradient is zero but for
                # rounding, which Adam's normalised step turns into lr-sized moves that only
                # inference (the moving mean) sees, ~1e-4 apart from Keras' after 3 epochs.
                L.Conv2D(4, 3, padding="same", use_bias=False),
                L.BatchNormalization(momentum=0.8),
                L.Activation("relu"),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(2, activation="softmax"),
            ]
        )


SPECS = [OTHERS[0], TARGET, OTHERS[1]]


@pytest.fixture(scope="module")
def lone_runs() -> list[ReplicaResult]:
    return SingleTrainer().train(TinyBatchNormCNN(), SPECS, 3, NullObserver())


def test_pack_of_three_equals_three_lone_runs(lone_runs: list[ReplicaResult]) -> None:
    # Each epoch's full-set loss is an inference pass: it reads the moving statistics
    # the pack carried across steps and epochs.
    packed = PackTrainer().train(TinyBatchNormCNN(), SPECS, 3, NullObserver())
    for single, p in zip(lone_runs, packed, strict=True):
        assert p.status == "completed"
        assert max_rel(single, p) < 1e-5


def test_a_diverged_replica_does_not_disturb_the_others(lone_runs: list[ReplicaResult]) -> None:
    packed = PackTrainer().train(TinyBatchNormCNN(), [BAD, *SPECS], 3, NullObserver())
    assert packed[0].status == "nonfinite"
    for single, p in zip(lone_runs, packed[1:], strict=True):
        assert max_rel(single, p) < 1e-5


@pytest.mark.slow  # the XLA compile takes ~10 s on the 2-core CPU
def test_pack_under_xla_equals_lone_runs(lone_runs: list[ReplicaResult]) -> None:
    packed = PackTrainer(jit_compile=True).train(TinyBatchNormCNN(), SPECS, 3, NullObserver())
    for single, p in zip(lone_runs, packed, strict=True):
        assert max_rel(single, p) < 1e-5
