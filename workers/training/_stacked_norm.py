"""LayerNormalization over K stacked replicas, op for op as Keras computes it.

Keras normalises each sample over the layer's axes; packs support the last
axis (the default), which the leading replica axis does not disturb, so the
statistics are Keras' own ``ops.moments`` (or ``ops.var`` with
``rms_scaling``) on the stacked tensor, and gamma and beta ``(K, features)``
broadcast over the batch and any middle axes.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from workers.training._layer_plan import Context, LayerPlan, Node, Unpackable, weight_shapes_of


def plan_layer_norm(layer: Any) -> LayerPlan | None:
    if not isinstance(layer, keras.layers.LayerNormalization):
        return None
    rank = len(layer.input.shape)
    axes = [a % rank for a in layer.axis]
    if axes != [rank - 1]:
        raise Unpackable(f"layer normalization {layer.name!r} normalises axes {layer.axis} (packs: the last)")
    rms = bool(layer.rms_scaling)
    return LayerPlan(
        "layer_norm",
        layer.name,
        weight_shapes=weight_shapes_of(layer),
        options=(
            ("epsilon", float(layer.epsilon)),
            ("rms_scaling", rms),
            ("gamma", layer.gamma is not None),
            ("beta", layer.beta is not None),
        ),
    )


def _per_replica(v: tf.Tensor, rank: int) -> tf.Tensor:
    """``(K, features)`` as ``(K, 1, ..., 1, features)`` against a rank-``rank`` stacked tensor."""
    return tf.reshape(v, tf.concat([tf.shape(v)[:1], [1] * (rank - 2), tf.shape(v)[1:]], 0))


def apply_layer_norm(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    (x,) = inputs
    h, shared = x.h, x.shared
    if shared and w:  # (batch, ...) read by every replica: one copy per replica from here on
        h, shared = tf.broadcast_to(h[None], tf.concat([tf.shape(w[0])[:1], tf.shape(h)], 0)), False
    rank = len(h.shape)
    ws = list(w)
    gamma = _per_replica(ws.pop(0), rank) if layer.option("gamma") else None
    beta = _per_replica(ws.pop(0), rank) if layer.option("beta") else None
    eps = layer.option("epsilon")
    ops = keras.ops
    if layer.option("rms_scaling"):
        variance = ops.var(h, axis=[-1], keepdims=True)
        out = h * ops.rsqrt(variance + eps)
        if gamma is not None:
            out = out * gamma
    else:
        mean, variance = ops.moments(h, axes=[-1], keepdims=True)
        inv = ops.rsqrt(variance + eps)
        if gamma is not None:
            inv = inv * gamma
        res = -mean * inv
        if beta is not None:
            res = res + beta
        out = h * inv + res
    return Node(out, out, shared)
