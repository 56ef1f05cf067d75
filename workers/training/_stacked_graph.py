"""A Keras model's layer graph in plan order, and a plan's forward pass over stacked weights.

``walk_graph`` reads a built model (Sequential or Functional: a Sequential is
a Functional graph with one path) into its layers in an order where every
layer comes after the layers it reads, each with the plan nodes it reads,
whether Keras hands it a mask, and its output shape. ``run_plan`` runs a
``StackedPlan`` in that order, each layer through ``APPLY``: the one table
from a plan kind to the function that computes it over K stacked replicas.

Masks. The only mask source packs support is an ``Embedding(mask_zero=True)``
on the model input, so every mask Keras passes is ``model input != 0``: the
layers in between pass it on unchanged (Dense, Dropout, LayerNormalization,
RNNs with ``return_sequences``) or OR it with identical or absent masks
(Add, Subtract, Average). ``walk_graph`` checks this; ``run_plan`` computes
the mask once from the input and hands it to the layers that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from keras.src import backend as keras_backend
from keras.src import tree

from workers.training._layer_plan import MODEL_INPUT, Context, LayerPlan, Node, Unpackable
from workers.training._stacked_batchnorm import batch_norm
from workers.training._stacked_conv import conv
from workers.training._stacked_embedding import apply_embedding, apply_masked_average_pooling
from workers.training._stacked_layers import _activation, _dense, recurrent
from workers.training._stacked_merge import apply_merge
from workers.training._stacked_norm import apply_layer_norm
from workers.training._stacked_pool import SHAPE_KINDS, shape_layer
from workers.training._stacked_recurrent import apply_bidirectional

if TYPE_CHECKING:
    from workers.training._stacked_model import StackedPlan


Apply = Callable[[LayerPlan, list[tf.Tensor], list[Node], Context], Node]


def _one(inputs: list[Node]) -> Node:
    (node,) = inputs
    return node


def _apply_dense(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    pre = _dense(x.h, w, layer.use_bias, x.shared)
    return Node(_activation(layer.activation)(pre), pre, False)


def _apply_rnn(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    mask = ctx.mask if layer.masked else None
    h = recurrent(x.h, w, layer, x.shared, ctx.training, ctx.fused_rnn, mask)
    return Node(h, h, False)


def _apply_dropout(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    h = x.h
    if ctx.training and layer.rate > 0:
        if ctx.seed is None:
            raise ValueError("dropout in training needs a seed")
        if x.shared:
            raise ValueError("dropout before the first weighted layer needs per-replica inputs")
        keep = 1.0 - layer.rate
        u = tf.random.stateless_uniform(
            tf.shape(h), seed=ctx.seed + tf.constant([0, 7919], tf.int32) * (ctx.index + 1)
        )
        # keras.random.dropout: inputs * mask / keep
        h = tf.where(u < keep, h / keep, tf.zeros_like(h))
    return Node(h, h, x.shared)


def _apply_flatten(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    lead = 1 if x.shared else 2
    # Leading axes from tf.shape: the batch axis may be dynamic (the epoch's last batch).
    h = tf.reshape(x.h, tf.concat([tf.shape(x.h)[:lead], [int(np.prod(x.h.shape[lead:]))]], 0))
    return Node(h, h, x.shared)


def _apply_activation(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    return Node(_activation(layer.activation)(x.h), x.h, x.shared)


def _apply_conv(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    # fused_rnn is set exactly when the caller compiles without XLA.
    pre = conv(x.h, w, layer, x.shared, xla=not ctx.fused_rnn)
    return Node(_activation(layer.activation)(pre), pre, False)


def _apply_batch_norm(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    h, new_state = batch_norm(x.h, w, layer, x.shared, ctx.training)
    if ctx.state_updates is not None:
        first = ctx.weight_offset + layer.n_weights - len(new_state)
        for j, t in enumerate(new_state):
            ctx.state_updates[first + j] = t
    return Node(h, h, False)


def _apply_shape_layer(layer: LayerPlan, w: list[tf.Tensor], inputs: list[Node], ctx: Context) -> Node:
    x = _one(inputs)
    h = shape_layer(x.h, layer, x.shared)
    return Node(h, h, x.shared)


# Plan kind -> the function that computes it (new layer families add one entry each).
APPLY: dict[str, Apply] = {
    "dense": _apply_dense,
    "lstm": _apply_rnn,
    "gru": _apply_rnn,
    "simple_rnn": _apply_rnn,
    "dropout": _apply_dropout,
    "flatten": _apply_flatten,
    "activation": _apply_activation,
    "layer_norm": apply_layer_norm,
    "merge": apply_merge,
    "embedding": apply_embedding,
    "masked_average_pooling1d": apply_masked_average_pooling,
    "bidirectional": apply_bidirectional,
    "conv": _apply_conv,
    "batch_norm": _apply_batch_norm,
    **dict.fromkeys(SHAPE_KINDS, _apply_shape_layer),
}

# Kinds that read Keras' mask; any other layer whose call takes a mask cannot be handed one.
MASK_AWARE = frozenset({"lstm", "gru", "simple_rnn", "masked_average_pooling1d", "bidirectional"})


def inputs_of(layer: LayerPlan, index: int) -> tuple[int, ...]:
    return layer.inputs or (index - 1 if index > 0 else MODEL_INPUT,)


def run_plan(
    plan: StackedPlan,
    weights: Sequence[tf.Tensor],
    x: tf.Tensor,
    *,
    shared_input: bool,
    training: bool,
    seed: tf.Tensor | None,
    fused_rnn: bool,
    state_updates: dict[int, tf.Tensor] | None = None,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The last layer's output of every replica and its pre-activation (``StackedPlan.forward``)."""
    mask = None
    if any(layer.masked for layer in plan.layers):
        mask = tf.not_equal(x, 0)  # Embedding.compute_mask on the model input
        if shared_input:
            mask = mask[None]
    model_input = Node(x, x, shared_input)
    nodes: list[Node] = []
    i = 0
    for li, layer in enumerate(plan.layers):
        w = list(weights[i : i + layer.n_weights])
        ins = [model_input if j == MODEL_INPUT else nodes[j] for j in inputs_of(layer, li)]
        ctx = Context(training, seed, fused_rnn, li, state_updates, i, mask)
        i += layer.n_weights
        nodes.append(APPLY[layer.kind](layer, w, ins, ctx))
    out = nodes[-1] if nodes else model_input
    if out.shared:
        raise Unpackable("the model has no weighted layer")
    return out.h, out.pre


# ---------------------------------------------------------------------- walking


@dataclass(frozen=True)
class GraphNode:
    """One layer call of the model, with what its plan needs to know about its place."""

    layer: Any
    inputs: tuple[int, ...]  # plan node indices (MODEL_INPUT for the model input)
    masked: bool
    out_shape: tuple[int, ...]


def _is_mask_op(op: Any) -> bool:
    """Keras' own mask arithmetic in a Functional graph (``not_equal``, ``logical_or``, ...)."""
    return not isinstance(op, keras.layers.Layer)


def walk_graph(model: Any) -> list[GraphNode]:
    """The model's layer calls in dependency order (raises ``Unpackable`` for other graphs)."""
    graph = model._functional if isinstance(model, keras.Sequential) else model
    if graph is None or not hasattr(graph, "_nodes_by_depth"):
        raise Unpackable("the model has no layer graph to read (a subclassed Model or an unbuilt Sequential)")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise Unpackable("the model has more than one input or output")
    model_input = graph.inputs[0]
    where: dict[int, int] = {id(model_input): MODEL_INPUT}
    mask_ok = {id(model_input)}  # tensors whose mask (if any) is `model input != 0`
    seen: set[int] = set()
    out: list[GraphNode] = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input:
                continue
            if _is_mask_op(op):
                if all(t.dtype == "bool" for t in node.outputs):
                    continue  # Keras computing a mask: packs compute it from the input instead
                raise Unpackable(f"operation {op.name!r} is not a layer packs support (use a Keras layer)")
            if id(op) in seen:
                raise Unpackable(f"layer {op.name!r} is called more than once (shared weights)")
            seen.add(id(op))
            args = tree.flatten(node.arguments.args)
            kwargs = dict(node.arguments.kwargs)
            if kwargs.pop("training", None):
                raise Unpackable(f"layer {op.name!r} is called with training=True")
            call_mask = kwargs.pop("mask", None)
            if kwargs:
                raise Unpackable(f"layer {op.name!r} is called with arguments {sorted(kwargs)}")
            if any(id(t) not in where for t in args) or len(node.outputs) != 1:
                raise Unpackable(f"layer {op.name!r} reads or returns tensors packs do not follow")
            masks = [keras_backend.get_keras_mask(t) for t in args]
            masked = call_mask is not None or any(m is not None for m in masks)
            if masked and not all(
                id(t) in mask_ok for t, m in zip(args, masks, strict=True) if m is not None
            ):
                raise Unpackable(f"layer {op.name!r} receives a mask packs cannot reproduce")
            output = node.outputs[0]
            if any(d is None for d in output.shape[1:]):
                shape = tuple(output.shape[1:])
                what = f"{type(op).__name__} {op.name!r}"
                raise Unpackable(f"{what} has an output of unknown size {shape} (packs need fixed shapes)")
            where[id(output)] = len(out)
            if _passes_input_mask(op, args, model_input):
                mask_ok.add(id(output))
            out.append(
                GraphNode(
                    layer=op,
                    inputs=tuple(where[id(t)] for t in args),
                    masked=masked,
                    out_shape=tuple(int(d) for d in output.shape[1:]),
                )
            )
    if not out or where.get(id(graph.outputs[0])) != len(out) - 1:
        raise Unpackable("the model's output is not its last layer")
    return out


def _passes_input_mask(op: Any, args: list[Any], model_input: Any) -> bool:
    """Whether the mask on ``op``'s output (if Keras sets one) is still ``model input != 0``."""
    L = keras.layers
    if isinstance(op, L.Embedding):
        return args[0] is model_input
    # Add, Subtract, Average: the OR of identical masks (or of the one mask and none). RNNs:
    # the input's mask with return_sequences, else none. The others pass it on unchanged.
    keeps = (L.Add, L.Subtract, L.Average, L.RNN, L.Bidirectional)
    return isinstance(op, keeps + (L.Dense, L.Dropout, L.Activation, L.LayerNormalization))
