"""Keras' BatchNormalization over K stacked replicas.

Each replica normalises with its own statistics: in training the moments of
its own mini-batch (over every axis but the replica and channel axes), and
its own moving mean and variance move by Keras' formula
``moving * momentum + batch * (1 - momentum)``; in inference (the full-set
evaluation, validation) it uses the moving statistics, as Keras does.

The moving statistics are the layer's last two weights, non-trainable
(``LayerPlan.n_state``): the forward pass reports their new values through
``state_updates`` and the pack's epoch function carries them from step to
step instead of taking an optimizer step on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from workers.training._stacked_errors import Unpackable

if TYPE_CHECKING:
    from workers.training._stacked_model import LayerPlan


@dataclass(frozen=True)
class BatchNormSpec:
    epsilon: float
    momentum: float
    center: bool  # has beta
    scale: bool  # has gamma


def plan_batch_norm(layer: Any) -> dict[str, Any] | None:
    """``LayerPlan`` fields of a BatchNormalization layer; None for other layers."""
    if type(layer) is not keras.layers.BatchNormalization:
        return None
    what = f"BatchNormalization {layer.name!r}"
    ndim = len(layer.input.shape)
    if layer.axis not in (-1, ndim - 1):
        raise Unpackable(f"{what} normalises axis {layer.axis} (packs support the last axis)")
    if getattr(layer, "renorm", False):
        raise Unpackable(f"{what} uses batch renormalization")
    for attr in ("beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"):
        if getattr(layer, attr, None) is not None:
            raise Unpackable(f"{what} has a {attr.replace('_', ' ')}")
    weights = [*layer.trainable_weights, *layer.non_trainable_weights]
    spec = BatchNormSpec(
        epsilon=float(layer.epsilon),
        momentum=float(layer.momentum),
        center=bool(layer.center),
        scale=bool(layer.scale),
    )
    return {
        "kind": "batch_norm",
        "config": spec,
        "n_state": 2,
        "weight_shapes": tuple(tuple(int(d) for d in w.shape) for w in weights),
    }


def batch_norm(
    h: tf.Tensor, w: Sequence[tf.Tensor], layer: LayerPlan, shared: bool, training: bool
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Each replica's output ``(K, B, ..., C)`` and, in training, its new moving (mean, variance)."""
    spec = layer.config
    assert isinstance(spec, BatchNormSpec)
    x = h
    if shared:  # the same batch for every replica (and so the same batch statistics)
        x = tf.broadcast_to(h[None], tf.concat([tf.shape(w[-1])[:1], tf.shape(h)], 0))
        x.set_shape(w[-1].shape[:1].concatenate(h.shape))
    gamma = w[0] if spec.scale else None
    beta = w[int(spec.scale)] if spec.center else None
    moving_mean, moving_var = w[-2], w[-1]  # (K, C)
    ones = [1] * (len(x.shape) - 2)

    def bcast(t: tf.Tensor) -> tf.Tensor:  # (K, C) -> (K, 1, ..., 1, C)
        return tf.reshape(t, tf.concat([tf.shape(t)[:1], ones, tf.shape(t)[1:]], 0))

    if training:
        mean, var = tf.nn.moments(x, axes=list(range(1, len(x.shape) - 1)))  # (K, C)
        new = [
            moving_mean * spec.momentum + mean * (1.0 - spec.momentum),
            moving_var * spec.momentum + var * (1.0 - spec.momentum),
        ]
    else:
        mean, var, new = moving_mean, moving_var, []
    out = tf.nn.batch_normalization(
        x,
        bcast(mean),
        bcast(var),
        None if beta is None else bcast(beta),
        None if gamma is None else bcast(gamma),
        spec.epsilon,
    )
    return out, new
