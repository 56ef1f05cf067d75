"""Embedding over K stacked tables, and the masked global average pooling that follows one.

Trainers feed inputs as float32, so the token ids arrive as floats; Keras'
Embedding casts them to int32 and takes rows of its table, and so does the
stacked one, from each replica's own ``(V, D)`` table. With ``mask_zero``
Keras' mask is ``ids != 0``; ``_stacked_graph`` computes it once from the
model input and hands it to the layers that read it (the recurrent layers
and ``GlobalAveragePooling1D``, here).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from workers.training._layer_plan import Context, LayerPlan, Node, Unpackable, weight_shapes_of


def plan_embedding(layer: Any) -> LayerPlan | None:
    L = keras.layers
    if isinstance(layer, L.GlobalAveragePooling1D):
        if layer.data_format != "channels_last" or layer.keepdims:
            return None  # not this module's: the unmasked pooling layers' planner may take it
        return LayerPlan("masked_average_pooling1d", layer.name)
    if type(layer) is not L.Embedding:
        return None
    if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None):
        raise Unpackable(f"embedding {layer.name!r} uses LoRA or quantization")
    if layer.mask_zero and len(layer.input.shape) != 2:
        raise Unpackable(f"embedding {layer.name!r} masks inputs of rank {len(layer.input.shape)} (packs: 2)")
    return LayerPlan(
        "embedding",
        layer.name,
        units=int(layer.output_dim),
        weight_shapes=weight_shapes_of(layer),
        options=(("mask_zero", bool(layer.mask_zero)),),
    )


def apply_embedding(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    (x,) = inputs
    table = w[0]  # (K, V, D)
    ids = tf.cast(x.h, tf.int32)  # Embedding.call: non-integer ids are cast to int32
    if x.shared:
        out = tf.gather(table, ids, axis=1)  # (K, batch, ..., D)
    else:
        out = tf.gather(table, ids, axis=1, batch_dims=1)
    return Node(out, out, False)


def apply_masked_average_pooling(
    layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context
) -> Node:
    """GlobalAveragePooling1D (channels last), with Keras' mask when the layer receives one."""
    (x,) = inputs
    steps = 1 if x.shared else 2
    if not layer.masked:
        out = tf.reduce_mean(x.h, axis=steps)
        return Node(out, out, x.shared)
    assert ctx.mask is not None and not x.shared  # masked inputs come from an embedding
    mask = ctx.mask[..., None]  # (K or 1, batch, T, 1)
    h = tf.where(mask, x.h, tf.zeros_like(x.h))
    out = tf.reduce_sum(h, axis=steps) / tf.reduce_sum(tf.cast(mask, h.dtype), axis=steps)
    return Node(out, out, False)
