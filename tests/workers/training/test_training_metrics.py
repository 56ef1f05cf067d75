"""workers/training/metrics.py: every built-in loss per sample, binary accuracy, chance levels."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pytest

from service.core.losses import LOSS_FAMILY, parse_loss
from workers.training.metrics import chance_levels, hits, label_kind, per_sample_loss
from workers.workloads.base import Dataset


@pytest.mark.parametrize("name", sorted(LOSS_FAMILY))
def test_every_loss_by_name_matches_keras_and_works_on_packs(name: str) -> None:
    rng = np.random.default_rng(0)
    family = LOSS_FAMILY[name]
    pred = rng.uniform(0.05, 0.95, size=(5, 3 if family in ("sparse", "categorical") else 1)).astype(
        "float32"
    )
    if family == "sparse":
        y = np.array([0, 1, 2, 1, 0], dtype="int32")
        pred = pred / pred.sum(axis=1, keepdims=True)
    elif family == "categorical":
        y = np.eye(3, dtype="float32")[[0, 1, 2, 1, 0]]
        pred = pred / pred.sum(axis=1, keepdims=True)
    else:
        y = rng.integers(0, 2, size=(5, 1)).astype("float32")
    per = keras.ops.convert_to_numpy(per_sample_loss(name)(y, pred))
    assert per.shape == (5,)
    expected = keras.ops.convert_to_numpy(getattr(keras.losses, name)(y, pred))
    np.testing.assert_allclose(per, expected, rtol=1e-6)
    # A pack stacks K replicas on a leading axis: one loss per replica and example.
    stacked = keras.ops.convert_to_numpy(per_sample_loss(name)(np.stack([y, y]), np.stack([pred, pred])))
    np.testing.assert_allclose(stacked, np.stack([per, per]), rtol=1e-6)


def test_a_serialized_loss_keeps_its_settings() -> None:
    loss = keras.losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)
    spec = parse_loss(json.loads(json.dumps(keras.losses.serialize(loss)))).spec
    y = np.array([[1.0], [0.0], [1.0]], dtype="float32")
    logits = np.array([[2.0], [-1.0], [-3.0]], dtype="float32")
    per = keras.ops.convert_to_numpy(per_sample_loss(spec)(y, logits))
    assert float(per.mean()) == pytest.approx(float(loss(y, logits)), rel=1e-6)


def test_binary_accuracy_thresholds() -> None:
    y = np.array([[1.0], [0.0], [1.0], [0.0]], dtype="float32")
    probs = np.array([[0.9], [0.4], [0.3], [0.6]], dtype="float32")
    assert keras.ops.convert_to_numpy(hits("binary", y, probs, "binary_crossentropy")).tolist() == [
        True,
        True,
        False,
        False,
    ]
    logits_spec = parse_loss({"class_name": "BinaryCrossentropy", "config": {"from_logits": True}}).spec
    logits = np.array([[0.2], [-0.1], [-2.0], [0.5]], dtype="float32")
    assert keras.ops.convert_to_numpy(hits("binary", y, logits, logits_spec)).sum() == 2
    assert label_kind(np.zeros((4, 1)), 2, "binary_crossentropy") == "binary"
    assert label_kind(np.zeros(4), 2, "sparse_categorical_crossentropy") == "integer"


@dataclass
class _Workload:
    loss: str
    num_classes: int
    y: np.ndarray
    default_params: dict[str, Any] = field(default_factory=dict)
    name: str = "w"

    def dataset(self) -> Dataset:
        return Dataset(np.zeros((len(self.y), 1), dtype="float32"), self.y)


def test_chance_levels_per_task() -> None:
    y = np.array([[1.0], [0.0], [0.0], [0.0]], dtype="float32")  # prior 1/4
    n, l_chance, majority = chance_levels(_Workload("binary_crossentropy", 2, y))
    assert n == 2 and majority == 0.75
    assert l_chance == pytest.approx(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    assert chance_levels(_Workload("hinge", 2, y))[1] is None  # no prior-entropy chance for a margin loss
    target = np.array([[1.0], [2.0], [4.0], [9.0]], dtype="float32")
    n, mse, majority = chance_levels(_Workload("mean_squared_error", 0, target))
    assert n == 0 and majority is None and mse == pytest.approx(float(np.var(target)), rel=1e-4)
    mae = chance_levels(_Workload("mae", 0, target))[1]
    assert mae == pytest.approx(float(np.abs(target - np.median(target)).mean()), rel=1e-3)
