"""A workload's data as every trainer feeds it: float32 inputs, labels by kind, as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from workers.training.metrics import LabelKind, label_kind


@dataclass(frozen=True)
class TrainingData:
    """Training (and validation, when the dataset has it) tensors and the kind of labels."""

    x: tf.Tensor
    y: tf.Tensor
    x_val: tf.Tensor | None
    y_val: tf.Tensor | None
    n: int
    kind: LabelKind

    @property
    def n_eval_max(self) -> int:
        """The most examples one full-set evaluation sees (training or validation set)."""
        return max(self.n, int(self.x_val.shape[0]) if self.x_val is not None else 0)


def _labels(y: np.ndarray, kind: LabelKind) -> np.ndarray:
    if kind == "integer":
        return y.reshape(-1).astype(np.int32)
    if kind == "binary":
        return y.reshape(-1, 1).astype(np.float32)
    return y.astype(np.float32, copy=False)


def load_training_data(workload: Any) -> TrainingData:
    ds = workload.dataset()
    kind = label_kind(np.asarray(ds.y_train), int(workload.num_classes), str(workload.loss))
    has_val = ds.x_val is not None and ds.y_val is not None and len(ds.x_val) > 0
    return TrainingData(
        x=tf.constant(np.asarray(ds.x_train).astype(np.float32, copy=False)),
        y=tf.constant(_labels(np.asarray(ds.y_train), kind)),
        x_val=tf.constant(np.asarray(ds.x_val).astype(np.float32, copy=False)) if has_val else None,
        y_val=tf.constant(_labels(np.asarray(ds.y_val), kind)) if has_val else None,
        n=int(np.asarray(ds.x_train).shape[0]),
        kind=kind,
    )
