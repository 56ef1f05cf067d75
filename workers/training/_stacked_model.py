"""A Keras model's forward pass over K stacked copies of its weights.

``plan_model`` reads a built Keras model into a ``StackedPlan``: its layers
in dependency order (``_stacked_graph.walk_graph``: a Sequential model is the
one-path case of a Functional graph), each with the static description of the
layer (units, activations, flags), the shapes of its trainable weights and
the plan nodes it reads. ``StackedPlan.forward`` then runs the same
arithmetic as Keras' layers, op for op, on weights stacked along a leading
replica axis (``(K, *shape)``) with tf ops (batched matmul, einsum,
``tf.scan`` over time), so K replicas cost one dispatch per op instead of K;
each plan kind's function is one entry of ``_stacked_graph.APPLY``. LSTMs
have faster paths: unrolled with a hand-written backward for short sequences
(``_lstm_unrolled``), and TensorFlow's fused kernel per replica for long ones
outside XLA (``_lstm_fused``).

Supported layers: InputLayer, Dense (on inputs of any rank), LSTM, GRU
(reset_after either way), SimpleRNN (no dropout inside the cell,
``return_sequences`` either way, no go_backwards/stateful/return_state),
Dropout (reproduced in distribution: masks come from a stateless RNG, not
from Keras' SeedGenerator), Flatten, Activation, LayerNormalization over the
last axis (``_stacked_norm``), and in Functional models the merge layers
Add, Subtract, Multiply, Average, Maximum, Minimum and Concatenate
(``_stacked_merge``), Embedding, with ``mask_zero`` honoured by the LSTM,
GRU, SimpleRNN and GlobalAveragePooling1D layers after it (``_stacked_embedding``;
a masked recurrent layer runs the ``tf.scan`` path), Bidirectional wrappers of
LSTM/GRU/SimpleRNN (``_stacked_recurrent``), Conv1D/Conv2D (``_stacked_conv``),
Max/AveragePooling1D/2D, GlobalAverage/GlobalMax Pooling1D/2D, Reshape,
Permute (``_stacked_pool``), BatchNormalization (``_stacked_batchnorm``).
Activations are Keras' own functions, applied
to stacked tensors (they act elementwise or on the last axis, which the
replica axis does not disturb). Anything else (a layer called twice, a model
with several inputs or outputs) raises ``Unpackable`` with the reason, and
the worker trains that workload one replica at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._layer_plan import (
    MODEL_INPUT,
    LayerPlan,
    Unpackable,
    act_name,
    check_no_extras,
    weight_shapes_of,
)
from workers.training._stacked_batchnorm import plan_batch_norm
from workers.training._stacked_conv import plan_conv
from workers.training._stacked_embedding import plan_embedding
from workers.training._stacked_graph import MASK_AWARE, inputs_of, run_plan, walk_graph
from workers.training._stacked_merge import plan_merge
from workers.training._stacked_norm import plan_layer_norm
from workers.training._stacked_pool import plan_shape_layer
from workers.training._stacked_recurrent import plan_bidirectional, plan_rnn

__all__ = ["LayerPlan", "StackedPlan", "Unpackable", "plan_model"]


@dataclass(frozen=True)
class StackedPlan:
    layers: tuple[LayerPlan, ...]  # in dependency order; the last one is the model's output
    input_shape: tuple[int, ...]  # without the batch axis
    output_units: int
    # Hashable description of the architecture: equal plans share compiled steps.
    signature: str = field(compare=False, default="")

    @property
    def weight_shapes(self) -> list[tuple[int, ...]]:
        return [s for layer in self.layers for s in layer.weight_shapes]

    @property
    def trainable_mask(self) -> list[bool]:
        """Per weight (plan order): trainable, or state the forward pass updates (``state_updates``)."""
        return [j < layer.n_weights - layer.n_state for layer in self.layers for j in range(layer.n_weights)]

    @property
    def trainable_indices(self) -> list[int]:
        """The indices (plan order) of the weights an optimizer steps (``trainable_mask``)."""
        return [j for j, t in enumerate(self.trainable_mask) if t]

    @property
    def n_params(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.weight_shapes))

    @property
    def final_softmax(self) -> bool:
        return self.layers[-1].activation == "softmax" and self.layers[-1].kind in (
            "dense",
            "activation",
        )

    @property
    def has_dropout(self) -> bool:
        return any(layer.kind == "dropout" and layer.rate > 0 for layer in self.layers)

    def shapes(self) -> list[tuple[list[int], list[int]]]:
        """Each layer's first input shape and output shape, without the batch axis."""
        outs: list[list[int]] = []
        result = []
        for li, layer in enumerate(self.layers):
            src = inputs_of(layer, li)[0]
            shape_in = list(self.input_shape) if src == MODEL_INPUT else outs[src]
            shape_out = list(layer.out_shape) if layer.out_shape else _chain_shape(layer, shape_in)
            outs.append(shape_out)
            result.append((shape_in, shape_out))
        return result

    def activation_floats_per_sample(self) -> int:
        """Rough count of float32 activations one sample keeps for the backward pass."""
        total = int(np.prod(self.input_shape))
        for layer, (shape_in, shape_out) in zip(self.layers, self.shapes(), strict=True):
            cell = layer.option("cell", layer.kind)  # a Bidirectional's cell runs twice
            if cell in ("lstm", "gru", "simple_rnn"):
                gates = {"lstm": 6, "gru": 5, "simple_rnn": 2}[cell]
                total += shape_in[0] * layer.units * gates * (2 if layer.kind == "bidirectional" else 1)
            total += int(np.prod(shape_out)) * (2 if layer.kind in ("dropout", "layer_norm") else 1)
        return total

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        weights: Sequence[tf.Tensor],
        x: tf.Tensor,
        *,
        shared_input: bool,
        training: bool,
        seed: tf.Tensor | None = None,
        fused_rnn: bool = False,
        state_updates: dict[int, tf.Tensor] | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Outputs of every replica, ``(K, batch, ...)``, and their pre-activation.

        ``x`` is ``(K, batch, ...)`` (each replica its own batch) or, with
        ``shared_input``, ``(batch, ...)`` fed to every replica. ``seed`` (int32
        ``[2]``) draws the dropout masks when ``training``. The second output is
        the last layer's input to its activation (the logits of a softmax), so
        the loss can be computed from logits the way Keras does inside a
        compiled train step. ``fused_rnn`` runs LSTMs as TensorFlow's fused
        ``BlockLSTM`` kernel (``_lstm_fused``); it has no XLA kernel, so only
        for functions compiled without ``jit_compile``; convolutions pick their
        formulation by it too (``_stacked_conv``). In training, the new values
        of the non-trainable weights (``trainable_mask``) go into
        ``state_updates`` by weight index. The layers run in plan order
        through ``_stacked_graph.APPLY``.
        """
        return run_plan(
            self,
            weights,
            x,
            shared_input=shared_input,
            training=training,
            seed=seed,
            fused_rnn=fused_rnn,
            state_updates=state_updates,
        )


def _chain_shape(layer: LayerPlan, shape: list[int]) -> list[int]:
    """A hand-made plan's output shape (plans from ``plan_model`` record theirs)."""
    if layer.kind == "dense":
        return shape[:-1] + [layer.units]
    if layer.kind in ("lstm", "gru", "simple_rnn"):
        return [shape[0], layer.units] if layer.return_sequences else [layer.units]
    if layer.kind == "flatten":
        return [int(np.prod(shape))]
    return shape


# ---------------------------------------------------------------------- planning


def _plan_layer(layer: Any) -> LayerPlan:
    check_no_extras(layer)
    L = keras.layers
    name = layer.name
    if isinstance(layer, L.InputLayer):
        raise AssertionError("filtered by caller")
    if isinstance(layer, L.Dense):
        return LayerPlan(
            "dense",
            name,
            units=layer.units,
            activation=act_name(layer.activation),
            use_bias=layer.use_bias,
            weight_shapes=weight_shapes_of(layer),
        )
    if isinstance(layer, (L.LSTM, L.GRU, L.SimpleRNN)):
        return plan_rnn(layer)
    if isinstance(layer, L.Dropout) and type(layer) is L.Dropout:
        if layer.noise_shape is not None:
            raise Unpackable(f"dropout {name!r} has a noise_shape")
        return LayerPlan("dropout", name, rate=float(layer.rate))
    if isinstance(layer, L.Flatten):
        return LayerPlan("flatten", name)
    if isinstance(layer, L.Activation):
        return LayerPlan("activation", name, activation=act_name(layer.activation))
    for planner in _PLANNERS:
        plan = planner(layer)
        if plan is not None:
            return plan
    fields = plan_conv(layer)
    if fields is not None:
        ws = weight_shapes_of(layer)
        return LayerPlan(name=name, activation=act_name(layer.activation), weight_shapes=ws, **fields)
    fields = plan_shape_layer(layer)
    if fields is None:
        fields = plan_batch_norm(layer)
    if fields is not None:
        return LayerPlan(name=name, **fields)
    raise Unpackable(f"layer {name!r} ({type(layer).__name__}) is not supported by training packs")


# Planners of the other layer families: each returns None for a layer that is not its own.
_PLANNERS = (plan_layer_norm, plan_merge, plan_embedding, plan_bidirectional)


def _placed(
    plan: LayerPlan, index: int, inputs: tuple[int, ...], masked: bool, out_shape: tuple[int, ...]
) -> LayerPlan:
    """``plan`` with its place in the graph (a chain link keeps ``inputs`` empty)."""
    chain = inputs == (index - 1 if index > 0 else MODEL_INPUT,)
    return dataclasses.replace(plan, inputs=() if chain else inputs, masked=masked, out_shape=out_shape)


def plan_model(model: Any) -> tuple[StackedPlan, list[np.ndarray]]:
    """The stacked plan of a built Keras model and its current weights (in plan order)."""
    if model.dtype_policy.name != "float32":
        raise Unpackable(f"dtype policy {model.dtype_policy.name} (packs train float32)")
    plans: list[LayerPlan] = []
    weights: list[np.ndarray] = []
    for index, node in enumerate(walk_graph(model)):
        plan = _placed(_plan_layer(node.layer), index, node.inputs, node.masked, node.out_shape)
        if plan.masked and plan.kind not in MASK_AWARE and getattr(node.layer, "_call_has_mask_arg", False):
            raise Unpackable(f"layer {plan.name!r} receives a mask, which packs do not apply there")
        plans.append(plan)
        if plan.n_weights:
            weights.extend(
                np.asarray(w.numpy(), dtype=np.float32)
                for w in [*node.layer.trainable_weights, *node.layer.non_trainable_weights]
            )
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    out_shape = model.outputs[0].shape
    signature = repr((input_shape, tuple((p.kind, *dataclasses.astuple(p)[2:]) for p in plans)))
    return (
        StackedPlan(tuple(plans), input_shape, int(out_shape[-1]), signature=signature),
        weights,
    )
