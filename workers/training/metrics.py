"""Loss, accuracy and chance level as every trainer computes them.

- Loss: the workload's Keras loss function applied per sample, then the
  **mean over the samples** of the batch or data set (Keras'
  ``sum_over_batch_size``). The loss is any built-in Keras loss of
  ``service.core.losses`` by name, or a serialized loss whose
  settings (``from_logits``, ``label_smoothing``, ``delta``, ...) are passed to
  the same function. Regularisation penalties (``model.losses``) are added to
  the training objective but are *not* part of the recorded losses.
- Accuracy: categorical accuracy (``argmax y == argmax pred``) for one-hot
  labels, sparse accuracy (``y == argmax pred``) for integer labels, binary
  accuracy for one output on 0/1 labels (``(pred > t) == y`` with ``t`` 0.5
  for probabilities, 0 for logits and hinge margins), ``None`` for regression
  (``num_classes == 0``). A model may have more outputs than there are classes
  (report 3 has 3 softmax units for 2 classes).
- Chance (``chance_levels``): for classifiers trained with cross-entropy the
  entropy of the label prior (the loss of the best constant prediction) and
  the majority-class accuracy; for regression the loss of the best constant
  prediction, found on the training labels with the loss itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from service.core.analysis.classify import label_prior
from service.core.losses import loss_from_spec

LabelKind = Literal["one_hot", "integer", "binary", "regression"]


@lru_cache(maxsize=32)
def per_sample_loss(spec: str) -> Callable[[Any, Any], Any]:
    """The unreduced loss ``(y_true, y_pred) -> (..., batch)`` for a workload's loss spec."""
    info = loss_from_spec(spec)  # InvalidUpload (a ValueError's kin) names the valid ones
    if info.spec == info.name:
        fn: Callable[[Any, Any], Any] = keras.losses.get(info.name)
        return fn
    obj = keras.losses.deserialize(json.loads(info.spec))
    kwargs = dict(getattr(obj, "_fn_kwargs", {}))
    base = obj.fn

    def loss(y_true: Any, y_pred: Any) -> Any:
        return base(y_true, y_pred, **kwargs)

    return loss


def label_kind(y: np.ndarray, num_classes: int, loss_spec: str | None = None) -> LabelKind:
    if num_classes == 0:
        return "regression"
    if loss_spec is not None and loss_from_spec(loss_spec).family == "binary":
        return "binary"
    if y.ndim >= 2 and y.shape[-1] > 1:
        return "one_hot"
    return "integer"


def hits(kind: LabelKind, y: Any, pred: Any, loss_spec: str) -> Any:
    """Per example (over the last-but-one axis): is the prediction the label's class? (module docstring)"""
    if kind == "one_hot":
        return tf.equal(tf.argmax(y, axis=-1), tf.argmax(pred, axis=-1))
    if kind == "integer":
        return tf.equal(tf.cast(y, tf.int64), tf.argmax(pred, axis=-1))
    if kind == "binary":
        threshold = loss_from_spec(loss_spec).binary_threshold
        return tf.equal(y[..., 0] > 0.5, pred[..., 0] > threshold)
    return tf.zeros(tf.shape(pred)[:-1], tf.bool)


def chance_levels(workload: Any) -> tuple[int, float | None, float | None]:
    """(num_classes, chance loss, majority-class accuracy) of a workload (module docstring)."""
    spec = str(workload.loss)
    info = loss_from_spec(spec)
    y = np.asarray(workload.dataset().y_train)
    if workload.num_classes == 0:
        return 0, _constant_predictor_loss(spec, y), None
    l_chance, majority = label_prior(y)
    return workload.num_classes, (l_chance if info.chance_is_prior_entropy else None), majority


def _constant_predictor_loss(spec: str, y: np.ndarray) -> float | None:
    """min over constants c of the mean loss(y, c): scanned over the labels' quantiles, then refined."""
    target = y.reshape(-1, 1).astype(np.float32)
    if target.size == 0:
        return None
    fn = per_sample_loss(spec)

    def mean_loss(candidates: np.ndarray) -> np.ndarray:
        preds = np.broadcast_to(candidates.reshape(-1, 1, 1), (candidates.size, *target.shape))
        labels = np.broadcast_to(target, preds.shape)
        per = keras.ops.convert_to_numpy(fn(labels.astype(np.float32), preds.astype(np.float32)))
        out: np.ndarray = np.asarray(per, dtype=np.float64).reshape(candidates.size, -1).mean(axis=1)
        return out

    grid = np.unique(np.quantile(target, np.linspace(0.0, 1.0, 101)))
    values = mean_loss(grid)
    best = int(np.nanargmin(values))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    fine = np.linspace(lo, hi, 101)
    found = float(np.nanmin(mean_loss(fine)))
    return min(found, float(values[best])) if np.isfinite(found) else None
