"""Keras' merge layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate) over K replicas.

The inputs are stacked the same way, ``(K, batch, ...)``; one read by every
replica (the model input, ``shared``) is broadcast to the replica axis first.
Keras' merges of inputs of different ranks reshape them; packs take inputs of
equal rank only (elementwise broadcasting of size-1 axes works as in Keras).
Multiply, Maximum, Minimum and Concatenate rewrite masked inputs; packs
refuse them behind a mask.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from workers.training._layer_plan import Context, LayerPlan, Node, Unpackable

_OPS = {
    keras.layers.Add: "add",
    keras.layers.Subtract: "subtract",
    keras.layers.Multiply: "multiply",
    keras.layers.Average: "average",
    keras.layers.Maximum: "maximum",
    keras.layers.Minimum: "minimum",
    keras.layers.Concatenate: "concatenate",
}
_MASK_SAFE = frozenset({"add", "subtract", "average"})


def plan_merge(layer: Any) -> LayerPlan | None:
    op = _OPS.get(type(layer))
    if op is None:
        return None
    ranks = {len(t.shape) for t in layer.input}
    if len(ranks) != 1:
        raise Unpackable(f"merge {layer.name!r} joins tensors of different ranks (packs: equal ranks)")
    if op not in _MASK_SAFE and any(getattr(t, "_keras_mask", None) is not None for t in layer.input):
        raise Unpackable(f"merge {layer.name!r} ({type(layer).__name__}) of masked inputs")
    options: tuple[tuple[str, Any], ...] = (("op", op),)
    if op == "concatenate":
        rank = ranks.pop()
        axis = int(layer.axis) % rank  # Keras' axis counts the batch axis
        if axis == 0:
            raise Unpackable(f"concatenate {layer.name!r} joins along the batch axis")
        options += (("axis", axis),)
    return LayerPlan("merge", layer.name, options=options)


def apply_merge(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    shared = all(x.shared for x in inputs)
    hs = [x.h for x in inputs]
    if not shared:
        k = next(tf.shape(x.h)[0] for x in inputs if not x.shared)
        hs = [
            tf.broadcast_to(x.h[None], tf.concat([[k], tf.shape(x.h)], 0)) if x.shared else x.h
            for x in inputs
        ]
    op = layer.option("op")
    if op == "concatenate":
        out = tf.concat(hs, axis=layer.option("axis") + (0 if shared else 1))
    elif op == "subtract":
        out = tf.subtract(hs[0], hs[1])
    else:
        fn = {"add": tf.add, "average": tf.add, "multiply": tf.multiply}.get(op)
        fn = fn or {"maximum": tf.maximum, "minimum": tf.minimum}[op]
        out = hs[0]
        for h in hs[1:]:
            out = fn(out, h)
        if op == "average":
            out = out / len(hs)
    return Node(out, out, shared)
