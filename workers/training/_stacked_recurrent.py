"""Planning the recurrent layers (LSTM, GRU, SimpleRNN), and Bidirectional wrappers of them.

A Bidirectional layer is two recurrent layers of the same configuration: the
forward one, and a backward one that reads the sequence (and its mask) in
reverse time order; with ``return_sequences`` its outputs are flipped back to
the input's order, then both are merged (concat, sum, ave or mul). Keras
forces ``zero_output_for_mask = return_sequences`` on both: behind a mask,
the returned sequences are zero at masked steps. The recurrent arithmetic is
``_stacked_layers.recurrent``, the same as for a lone recurrent layer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import tensorflow as tf

from workers.training._layer_plan import (
    Context,
    LayerPlan,
    Node,
    Unpackable,
    act_name,
    check_no_extras,
    weight_shapes_of,
)
from workers.training._stacked_layers import recurrent

_KINDS = {keras.layers.LSTM: "lstm", keras.layers.GRU: "gru", keras.layers.SimpleRNN: "simple_rnn"}
_MERGE_MODES = ("concat", "sum", "ave", "mul")


def plan_rnn(layer: Any, *, bidirectional: bool = False) -> LayerPlan:
    name = layer.name
    for flag in (
        ("stateful", "return_state") if bidirectional else ("go_backwards", "stateful", "return_state")
    ):
        if getattr(layer, flag, False):
            raise Unpackable(f"recurrent layer {name!r} uses {flag}")
    if getattr(layer, "dropout", 0) or getattr(layer, "recurrent_dropout", 0):
        raise Unpackable(f"recurrent layer {name!r} uses dropout inside the cell")
    if getattr(layer, "zero_output_for_mask", False) and not bidirectional:
        raise Unpackable(f"recurrent layer {name!r} uses zero_output_for_mask")
    kind = _KINDS.get(type(layer))
    if kind is None:
        raise Unpackable(f"layer {name!r} is a subclass of a recurrent layer")
    return LayerPlan(
        kind,
        name,
        units=layer.units,
        activation=act_name(layer.activation),
        recurrent_activation=(act_name(layer.recurrent_activation) if kind != "simple_rnn" else "sigmoid"),
        use_bias=layer.use_bias,
        return_sequences=bool(layer.return_sequences),
        reset_after=bool(getattr(layer, "reset_after", True)),
        weight_shapes=weight_shapes_of(layer),
    )


def _same_config(forward: Any, backward: Any) -> bool:
    ignore = {"name", "go_backwards", "zero_output_for_mask"}
    a = {k: v for k, v in forward.get_config().items() if k not in ignore}
    b = {k: v for k, v in backward.get_config().items() if k not in ignore}
    return a == b and type(forward) is type(backward)


def plan_bidirectional(layer: Any) -> LayerPlan | None:
    if type(layer) is not keras.layers.Bidirectional:
        return None
    fwd, bwd = layer.forward_layer, layer.backward_layer
    check_no_extras(fwd)
    check_no_extras(bwd)
    if fwd.go_backwards or not bwd.go_backwards or not _same_config(fwd, bwd):
        raise Unpackable(f"bidirectional {layer.name!r} has its own backward layer (packs: Keras' mirror)")
    if layer.merge_mode not in _MERGE_MODES:
        raise Unpackable(f"bidirectional {layer.name!r} returns both directions apart (merge_mode=None)")
    cell = plan_rnn(fwd, bidirectional=True)
    return dataclasses.replace(
        cell,
        kind="bidirectional",
        name=layer.name,
        weight_shapes=cell.weight_shapes + weight_shapes_of(bwd),
        options=(("cell", cell.kind), ("merge_mode", layer.merge_mode)),
    )


def apply_bidirectional(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    (x,) = inputs
    cell = dataclasses.replace(layer, kind=layer.option("cell"), options=())
    half = len(w) // 2
    mask = ctx.mask if layer.masked else None
    time = 1 if x.shared else 2
    y = recurrent(x.h, w[:half], cell, x.shared, ctx.training, ctx.fused_rnn, mask)
    y_rev = recurrent(
        tf.reverse(x.h, [time]),
        w[half:],
        cell,
        x.shared,
        ctx.training,
        ctx.fused_rnn,
        None if mask is None else tf.reverse(mask, [2]),
    )
    if layer.return_sequences:
        y_rev = tf.reverse(y_rev, [2])  # back to the input's time order: (K, batch, T, units)
        if mask is not None:  # zero_output_for_mask, forced by Bidirectional with return_sequences
            keep = mask[..., None]
            y = tf.where(keep, y, tf.zeros_like(y))
            y_rev = tf.where(keep, y_rev, tf.zeros_like(y_rev))
    mode = layer.option("merge_mode")
    if mode == "concat":
        out = tf.concat([y, y_rev], axis=-1)
    elif mode == "sum":
        out = y + y_rev
    elif mode == "ave":
        out = (y + y_rev) / 2
    else:
        out = y * y_rev
    return Node(out, out, False)
