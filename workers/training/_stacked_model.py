"""A Keras model's forward pass over K stacked copies of its weights.

``plan_model`` reads a built Keras model (a chain of supported layers) into a
``StackedPlan``: the static description of each layer (units, activations,
flags) and the shapes of its trainable weights. ``StackedPlan.forward`` then
runs the same arithmetic as Keras' layers, op for op, on weights stacked along
a leading replica axis (``(K, *shape)``) with tf ops (batched matmul, einsum,
``tf.scan`` over time), so K replicas cost one dispatch per op instead of K.
LSTMs have faster paths: unrolled with a hand-written backward for short
sequences (``_lstm_unrolled``), and TensorFlow's fused kernel per replica for
long ones outside XLA (``_lstm_fused``).

Supported layers: InputLayer, Dense (on inputs of any rank), LSTM, GRU
(reset_after either way), SimpleRNN (no dropout inside the cell,
``return_sequences`` either way, no go_backwards/stateful/return_state),
Dropout (reproduced in distribution: masks come from a stateless RNG, not
from Keras' SeedGenerator), Flatten, Activation, Conv1D/Conv2D
(``_stacked_conv``), Max/AveragePooling1D/2D, GlobalAverage/GlobalMax
Pooling1D/2D, Reshape, Permute (``_stacked_pool``), BatchNormalization
(``_stacked_batchnorm``). Activations are Keras' own
functions, applied to stacked tensors (they act elementwise or on the last
axis, which the replica axis does not disturb). Anything else raises
``Unpackable`` with the reason, and the worker trains that workload one
replica at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._stacked_batchnorm import batch_norm, plan_batch_norm
from workers.training._stacked_conv import conv, plan_conv
from workers.training._stacked_errors import Unpackable as Unpackable
from workers.training._stacked_layers import _activation, _dense, _gru, _lstm, _simple_rnn
from workers.training._stacked_pool import SHAPE_KINDS, plan_shape_layer, shape_layer

_SUPPORTED_ACTIVATIONS = frozenset(
    {
        "linear",
        "relu",
        "relu6",
        "tanh",
        "sigmoid",
        "hard_sigmoid",
        "softmax",
        "softplus",
        "softsign",
        "elu",
        "selu",
        "gelu",
        "silu",
        "swish",
        "leaky_relu",
        "exponential",
    }
)


@dataclass(frozen=True)
class LayerPlan:
    # dense | lstm | gru | simple_rnn | dropout | flatten | activation | conv | batch_norm | SHAPE_KINDS
    kind: str
    name: str
    units: int = 0
    activation: str = "linear"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    return_sequences: bool = False
    reset_after: bool = True
    rate: float = 0.0
    weight_shapes: tuple[tuple[int, ...], ...] = ()
    config: Any = None  # conv, pooling, reshape, permute: their static options (hashable)
    out_shape: tuple[int, ...] = ()  # conv, pooling, reshape, permute: the output without the batch axis
    n_state: int = 0  # the last n_state weights are non-trainable state (batch_norm's moving statistics)

    @property
    def n_weights(self) -> int:
        return len(self.weight_shapes)


@dataclass(frozen=True)
class StackedPlan:
    layers: tuple[LayerPlan, ...]
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

    def activation_floats_per_sample(self) -> int:
        """Rough count of float32 activations one sample keeps for the backward pass."""
        shape = list(self.input_shape)
        total = int(np.prod(shape))
        for layer in self.layers:
            if layer.kind == "dense":
                shape = shape[:-1] + [layer.units]
            elif layer.kind in ("lstm", "gru", "simple_rnn"):
                gates = {"lstm": 6, "gru": 5, "simple_rnn": 2}[layer.kind]
                total += shape[0] * layer.units * gates
                shape = [shape[0], layer.units] if layer.return_sequences else [layer.units]
            elif layer.kind == "flatten":
                shape = [int(np.prod(shape))]
            elif layer.out_shape:
                shape = list(layer.out_shape)
            total += int(np.prod(shape)) * (2 if layer.kind == "dropout" else 1)
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
        ``state_updates`` by weight index.
        """
        h = x
        shared = shared_input
        pre = h
        i = 0
        for li, layer in enumerate(self.layers):
            w = list(weights[i : i + layer.n_weights])
            i += layer.n_weights
            act = _activation(layer.activation)
            if layer.kind == "dense":
                pre = _dense(h, w, layer.use_bias, shared)
                shared = False
                h = act(pre)
            elif layer.kind == "lstm":
                h = _lstm(h, w, layer, shared, training, fused_rnn)
                shared = False
                pre = h
            elif layer.kind == "gru":
                h = _gru(h, w, layer, shared)
                shared = False
                pre = h
            elif layer.kind == "simple_rnn":
                h = _simple_rnn(h, w, layer, shared)
                shared = False
                pre = h
            elif layer.kind == "dropout":
                if training and layer.rate > 0:
                    if seed is None:
                        raise ValueError("dropout in training needs a seed")
                    if shared:
                        raise ValueError("dropout before the first weighted layer needs per-replica inputs")
                    keep = 1.0 - layer.rate
                    u = tf.random.stateless_uniform(
                        tf.shape(h), seed=seed + tf.constant([0, 7919], tf.int32) * (li + 1)
                    )
                    # keras.random.dropout: inputs * mask / keep
                    h = tf.where(u < keep, h / keep, tf.zeros_like(h))
                pre = h
            elif layer.kind == "conv":
                # fused_rnn is set exactly when the caller compiles without XLA.
                pre = conv(h, w, layer, shared, xla=not fused_rnn)
                shared = False
                h = act(pre)
            elif layer.kind == "batch_norm":
                h, new_state = batch_norm(h, w, layer, shared, training)
                shared = False
                pre = h
                if state_updates is not None:
                    for j, t in enumerate(new_state):
                        state_updates[i - len(new_state) + j] = t
            elif layer.kind in SHAPE_KINDS:
                h = pre = shape_layer(h, layer, shared)
            elif layer.kind == "flatten":
                lead = 1 if shared else 2
                # Leading axes from tf.shape: the batch axis may be dynamic (the epoch's last batch).
                h = tf.reshape(h, tf.concat([tf.shape(h)[:lead], [int(np.prod(h.shape[lead:]))]], 0))
                pre = h
            elif layer.kind == "activation":
                pre = h
                h = act(h)
            else:  # pragma: no cover - plan_model only produces the kinds above
                raise AssertionError(layer.kind)
        if shared:
            raise Unpackable("the model has no weighted layer")
        return h, pre


# ---------------------------------------------------------------------- planning


def _act_name(fn: Any) -> str:
    name = keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name"))
    if not isinstance(name, str) or name not in _SUPPORTED_ACTIVATIONS:
        raise Unpackable(f"activation {name!r} is not supported by training packs")
    return name


def _check_no_extras(layer: Any) -> None:
    for attr in (
        "kernel_regularizer",
        "recurrent_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "recurrent_constraint",
        "bias_constraint",
    ):
        if getattr(layer, attr, None) is not None:
            raise Unpackable(f"layer {layer.name!r} has a {attr.replace('_', ' ')}")
    if not layer.trainable and layer.weights:
        raise Unpackable(f"layer {layer.name!r} is frozen (trainable=False)")


def _weights_of(layer: Any) -> list[Any]:
    if layer.non_trainable_weights:
        raise Unpackable(f"layer {layer.name!r} has non-trainable weights")
    return list(layer.trainable_weights)


def _plan_layer(layer: Any) -> LayerPlan:
    _check_no_extras(layer)
    L = keras.layers
    name = layer.name
    if isinstance(layer, L.InputLayer):
        raise AssertionError("filtered by caller")
    if isinstance(layer, L.Dense):
        ws = _weights_of(layer)
        return LayerPlan(
            "dense",
            name,
            units=layer.units,
            activation=_act_name(layer.activation),
            use_bias=layer.use_bias,
            weight_shapes=tuple(tuple(w.shape) for w in ws),
        )
    if isinstance(layer, (L.LSTM, L.GRU, L.SimpleRNN)):
        for flag in ("go_backwards", "stateful", "return_state"):
            if getattr(layer, flag, False):
                raise Unpackable(f"recurrent layer {name!r} uses {flag}")
        if getattr(layer, "dropout", 0) or getattr(layer, "recurrent_dropout", 0):
            raise Unpackable(f"recurrent layer {name!r} uses dropout inside the cell")
        if getattr(layer, "supports_masking", False) and getattr(layer, "_compute_mask_passthrough", False):
            raise Unpackable(f"recurrent layer {name!r} receives a mask")
        ws = _weights_of(layer)
        kind = (
            {L.LSTM: "lstm", L.GRU: "gru", L.SimpleRNN: "simple_rnn"}[type(layer)]
            if type(layer) in (L.LSTM, L.GRU, L.SimpleRNN)
            else None
        )
        if kind is None:
            raise Unpackable(f"layer {name!r} is a subclass of a recurrent layer")
        return LayerPlan(
            kind,
            name,
            units=layer.units,
            activation=_act_name(layer.activation),
            recurrent_activation=(
                _act_name(layer.recurrent_activation) if kind != "simple_rnn" else "sigmoid"
            ),
            use_bias=layer.use_bias,
            return_sequences=bool(layer.return_sequences),
            reset_after=bool(getattr(layer, "reset_after", True)),
            weight_shapes=tuple(tuple(w.shape) for w in ws),
        )
    if isinstance(layer, L.Dropout) and type(layer) is L.Dropout:
        if layer.noise_shape is not None:
            raise Unpackable(f"dropout {name!r} has a noise_shape")
        return LayerPlan("dropout", name, rate=float(layer.rate))
    if isinstance(layer, L.Flatten):
        return LayerPlan("flatten", name)
    if isinstance(layer, L.Activation):
        return LayerPlan("activation", name, activation=_act_name(layer.activation))
    fields = plan_conv(layer)
    if fields is not None:
        ws = _weights_of(layer)
        act = _act_name(layer.activation)
        return LayerPlan(name=name, activation=act, weight_shapes=tuple(tuple(w.shape) for w in ws), **fields)
    fields = plan_shape_layer(layer)
    if fields is None:
        fields = plan_batch_norm(layer)
    if fields is not None:
        return LayerPlan(name=name, **fields)
    raise Unpackable(f"layer {name!r} ({type(layer).__name__}) is not supported by training packs")


def plan_model(model: Any) -> tuple[StackedPlan, list[np.ndarray]]:
    """The stacked plan of a built Keras model and its current weights (in plan order)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise Unpackable("the model has more than one input or output")
    if model.dtype_policy.name != "float32":
        raise Unpackable(f"dtype policy {model.dtype_policy.name} (packs train float32)")
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not isinstance(model, keras.Sequential):
        prev = model.inputs[0]
        for layer in layers:
            if layer.input is not prev:
                raise Unpackable("the model is not a simple chain of layers")
            prev = layer.output
    plans: list[LayerPlan] = []
    weights: list[np.ndarray] = []
    for layer in layers:
        plan = _plan_layer(layer)
        plans.append(plan)
        if plan.n_weights:
            weights.extend(
                np.asarray(w.numpy(), dtype=np.float32)
                for w in [*layer.trainable_weights, *layer.non_trainable_weights]
            )
    input_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    out_shape = model.outputs[0].shape
    signature = repr(
        (
            input_shape,
            tuple(
                (
                    p.kind,
                    p.units,
                    p.activation,
                    p.recurrent_activation,
                    p.use_bias,
                    p.return_sequences,
                    p.reset_after,
                    p.rate,
                    p.weight_shapes,
                    p.config,
                    p.out_shape,
                )
                for p in plans
            ),
        )
    )
    return (
        StackedPlan(tuple(plans), input_shape, int(out_shape[-1]), signature=signature),
        weights,
    )
