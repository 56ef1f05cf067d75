"""Packs train with every loss the single trainer does: a replica in a pack matches it alone for a
sigmoid binary classifier, a logit one (from_logits=True) and a Huber regression."""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pytest

from tests.workers.training.pack_workloads import max_rel
from workers.training.interface import NullObserver, ReplicaSpec
from workers.training.packs import PackTrainer, can_pack
from workers.training.single import SingleTrainer
from workers.workloads.keras_json import KerasJsonWorkload

REPLICAS = [
    ReplicaSpec("a", {"learning_rate": 0.05, "batch_size": 8, "optimizer": "rmsprop"}, 1, 2),
    ReplicaSpec("b", {"learning_rate": 0.01, "batch_size": 8, "optimizer": "rmsprop"}, 3, 4),
]


def _workload(loss: object, *, regression: bool = False, activation: str = "sigmoid") -> KerasJsonWorkload:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    signal = x @ rng.normal(size=5)
    y = (
        (signal + 0.3 * rng.normal(size=40)).astype(np.float32)
        if regression
        else (signal > 0).astype(np.int64)
    )
    buf = io.BytesIO()
    np.savez(buf, x_train=x[:32], y_train=y[:32], x_val=x[32:], y_val=y[32:])
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.Dense(6, activation="tanh"),
            keras.layers.Dense(1, activation=activation),
        ]
    )
    spec = loss if isinstance(loss, str) else json.dumps(loss)
    return KerasJsonWorkload(model.to_json(), buf.getvalue(), spec, name=f"w-{spec[:20]}")


@pytest.mark.parametrize(
    "workload",
    [
        pytest.param(lambda: _workload("binary_crossentropy"), id="sigmoid-bce"),
        pytest.param(
            lambda: _workload(
                keras.losses.serialize(keras.losses.BinaryCrossentropy(from_logits=True)), activation="linear"
            ),
            id="logits-bce",
        ),
        pytest.param(lambda: _workload("huber", regression=True, activation="linear"), id="huber"),
    ],
)
def test_replica_in_pack_equals_replica_alone(workload) -> None:  # type: ignore[no-untyped-def]
    w = workload()
    assert can_pack(w)[0]
    single = SingleTrainer().train(w, REPLICAS, 4, NullObserver())
    packed = PackTrainer().train(w, REPLICAS, 4, NullObserver())
    for s, p in zip(single, packed, strict=True):
        assert s.status == p.status == "completed"
        # Losses, accuracy, validation, grad norm and lr, to float32 rounding.
        assert max_rel(s, p) < 1e-4
    if w.num_classes:
        # Binary accuracy is measured (0.5 threshold on probabilities, 0 on logits) and is learned.
        assert single[0].epochs[-1].accuracy is not None and single[0].epochs[-1].accuracy > 0.8
    else:
        assert single[0].epochs[-1].accuracy is None
