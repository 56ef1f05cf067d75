"""Tiny real Keras workloads and replicas shared by the pack-trainer tests.

The reference is ``SingleTrainer`` (plain Keras model + Keras optimizer, one
replica at a time). Packs here hold up to 4 replicas with Adam and SGD so that
most tests of one trainer share one compiled function.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import keras
import numpy as np

from workers.training.interface import EpochRecord, NullObserver, ReplicaResult, ReplicaSpec
from workers.training.packs import PackTrainer, can_pack
from workers.training.single import SingleTrainer
from workers.workloads.base import Dataset

EPOCHS = 4


class TinyLSTM:
    """sensor_lstm in miniature: LSTM -> Dense(softmax), one-hot labels, validation split."""

    name = "tiny_lstm"
    loss = "categorical_crossentropy"
    num_classes = 3
    default_params: dict[str, Any] = {"optimizer": "rmsprop", "learning_rate": 1e-3, "batch_size": 8}

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, 30)
        t = np.linspace(0, 1, 10)[None, :, None]
        x = (np.sin((labels[:, None, None] + 1) * 3 * t) + 0.3 * rng.normal(size=(30, 10, 1))).astype(
            np.float32
        )
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:22], y[:22], x[22:], y[22:])

    def build_model(self) -> Any:
        return keras.Sequential(
            [keras.Input((10, 1)), keras.layers.LSTM(6), keras.layers.Dense(3, activation="softmax")]
        )


class TinyLongLSTM(TinyLSTM):
    """Sequences longer than MAX_UNROLL: tf.scan training, evaluation in a while loop."""

    name = "tiny_long_lstm"

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 3, 24)
        t = np.linspace(0, 1, 40)[None, :, None]
        x = (np.sin((labels[:, None, None] + 1) * 3 * t) + 0.3 * rng.normal(size=(24, 40, 1))).astype(
            np.float32
        )
        y = np.eye(3, dtype=np.float32)[labels]
        return Dataset(x[:16], y[:16], x[16:], y[16:])

    def build_model(self) -> Any:
        return keras.Sequential(
            [keras.Input((40, 1)), keras.layers.LSTM(4), keras.layers.Dense(3, activation="softmax")]
        )


class TinyDense:
    """A Dense classifier with Dropout and Flatten (pixel_color's layer types), integer labels."""

    name = "tiny_dense"
    loss = "sparse_categorical_crossentropy"
    num_classes = 2
    default_params: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 8}

    def __init__(self, dropout: float = 0.0) -> None:
        self.dropout = dropout

    def dataset(self) -> Dataset:
        rng = np.random.default_rng(1)
        x = rng.normal(size=(40, 3, 2)).astype(np.float32)
        y = (x[:, 0, 0] > 0).astype(np.int32)
        return Dataset(x, y)

    def build_model(self) -> Any:
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((3, 2)),
                L.Dense(8, activation="relu"),
                L.Dropout(self.dropout),
                L.Flatten(),
                L.Dense(2, activation="softmax"),
            ]
        )


class Conv:
    """An unpackable model: a Conv1D that is itself grouped (packs need groups=1)."""

    name = "conv"
    loss = "mse"
    num_classes = 0
    default_params: dict[str, Any] = {"optimizer": "sgd", "batch_size": 4}

    def dataset(self) -> Dataset:
        x = np.random.default_rng(2).normal(size=(8, 5, 2)).astype(np.float32)
        return Dataset(x, x[:, 0, :])

    def build_model(self) -> Any:
        return keras.Sequential(
            [keras.Input((5, 2)), keras.layers.Conv1D(2, 5, groups=2), keras.layers.Flatten()]
        )


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[list[tuple[Hashable, EpochRecord]]] = []
        self.stop_after = stop_after

    def on_epoch(self, records: Sequence[tuple[Hashable, EpochRecord]]) -> None:
        self.calls.append(list(records))

    def should_stop(self) -> bool:
        return self.stop_after is not None and len(self.calls) > self.stop_after


TARGET = ReplicaSpec("target", {"optimizer": "adam", "learning_rate": 3e-3, "clipnorm": 1.0}, 11, 12)
OTHERS = [
    ReplicaSpec(
        "sgd", {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True}, 21, 22
    ),
    ReplicaSpec(
        "adam-b1", {"optimizer": "adam", "learning_rate": 1e-2, "beta_1": 0.5, "schedule": "cosine"}, 31, 32
    ),
]
BAD = ReplicaSpec("bad", {"optimizer": "sgd", "learning_rate": 1e38}, 41, 42)  # overflows float32


def rel(a: float | None, b: float | None) -> float:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return 0.0
    return abs(a - b) / max(abs(a), 1e-6)


def max_rel(single: ReplicaResult, packed: ReplicaResult) -> float:
    assert len(single.epochs) == len(packed.epochs)
    worst = 0.0
    for s, p in zip(single.epochs, packed.epochs, strict=True):
        for f in ("loss", "accuracy", "running_loss", "val_loss", "grad_norm", "learning_rate"):
            worst = max(worst, rel(getattr(s, f), getattr(p, f)))
    return worst


def pack_vs_lone_runs(workload: Any, epochs: int = 3) -> float:
    """The worst relative gap between a pack of 3 different replicas and their 3 lone Keras runs.

    Per epoch: loss, accuracy, running loss, validation loss, gradient norm
    and learning rate. The workload must pack (no silent fallback).
    """
    assert can_pack(workload) == (True, "")
    specs = [OTHERS[0], TARGET, OTHERS[1]]
    packed = PackTrainer().train(workload, specs, epochs, NullObserver())
    worst = 0.0
    for spec, p in zip(specs, packed, strict=True):
        lone = SingleTrainer().train(workload, [spec], epochs, NullObserver())[0]
        assert p.status == lone.status == "completed"
        worst = max(worst, max_rel(lone, p))
    return worst
