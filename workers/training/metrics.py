"""Loss and accuracy as every trainer computes them.

- Loss: the workload's Keras loss function applied per sample (Keras'
  ``categorical_crossentropy`` / ``sparse_categorical_crossentropy`` with
  ``from_logits=False``, so predictions are clipped to [1e-7, 1 - 1e-7];
  ``mean_squared_error`` averages over the last axis), then the **mean over
  the samples** of the batch or data set (Keras' ``sum_over_batch_size``).
  Regularisation penalties (``model.losses``) are added to the training
  objective but are *not* part of the recorded losses.
- Accuracy: categorical accuracy (``argmax y == argmax pred``) for one-hot
  labels, sparse accuracy (``y == argmax pred``) for integer labels, ``None``
  for regression (``num_classes == 0``). A model may have more outputs than
  there are classes (report 3 has 3 softmax units for 2 classes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import keras
import numpy as np

LabelKind = Literal["one_hot", "integer", "regression"]

_LOSSES: dict[str, Callable[[Any, Any], Any]] = {
    "categorical_crossentropy": keras.losses.categorical_crossentropy,
    "sparse_categorical_crossentropy": keras.losses.sparse_categorical_crossentropy,
    "mse": keras.losses.mean_squared_error,
    "mean_squared_error": keras.losses.mean_squared_error,
}


def per_sample_loss(name: str) -> Callable[[Any, Any], Any]:
    """The unreduced loss function ``(y_true, y_pred) -> (batch,)`` for a workload loss name."""
    try:
        return _LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; use one of {', '.join(_LOSSES)}") from None


def label_kind(y: np.ndarray, num_classes: int) -> LabelKind:
    if num_classes == 0:
        return "regression"
    if y.ndim >= 2 and y.shape[-1] > 1:
        return "one_hot"
    return "integer"
