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
from Keras' SeedGenerator), Flatten, Activation. Activations are Keras' own
functions, applied to stacked tensors (they act elementwise or on the last
axis, which the replica axis does not disturb). Anything else raises
``Unpackable`` with the reason, and the worker trains that workload one
replica at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._lstm_fused import lstm_fused
from workers.training._lstm_unrolled import MAX_UNROLL, lstm_forward_loop, lstm_forward_only, lstm_unrolled

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


class Unpackable(ValueError):
    """The model cannot be trained as a weight-stacked pack; the message says why."""


@dataclass(frozen=True)
class LayerPlan:
    kind: str  # dense | lstm | gru | simple_rnn | dropout | flatten | activation
    name: str
    units: int = 0
    activation: str = "linear"
    recurrent_activation: str = "sigmoid"
    use_bias: bool = True
    return_sequences: bool = False
    reset_after: bool = True
    rate: float = 0.0
    weight_shapes: tuple[tuple[int, ...], ...] = ()

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
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Outputs of every replica, ``(K, batch, ...)``, and their pre-activation.

        ``x`` is ``(K, batch, ...)`` (each replica its own batch) or, with
        ``shared_input``, ``(batch, ...)`` fed to every replica. ``seed`` (int32
        ``[2]``) draws the dropout masks when ``training``. The second output is
        the last layer's input to its activation (the logits of a softmax), so
        the loss can be computed from logits the way Keras does inside a
        compiled train step. ``fused_rnn`` runs LSTMs as TensorFlow's fused
        ``BlockLSTM`` kernel (``_lstm_fused``); it has no XLA kernel, so only
        for functions compiled without ``jit_compile``.
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


def _activation(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    if name == "linear":
        return lambda t: t
    fn = keras.activations.get(name)
    return lambda t: fn(t)


def _dense(h: tf.Tensor, w: list[tf.Tensor], use_bias: bool, shared: bool) -> tf.Tensor:
    kernel = w[0]  # (K, in, out)
    if shared:
        # (B, ..., in) x (K, in, out) -> (K, B, ..., out)
        # Dense on every position (e.g. every pixel) as one matmul over the flattened
        # leading axes: an einsum with an ellipsis over 3+ axes ran 5x slower forward
        # and its gradient 5x slower again (pixel_color, K=8, 16x16 images).
        flat = tf.reshape(h, [-1, h.shape[-1]])
        out = tf.einsum("mi,kio->kmo", flat, kernel)
        out = tf.reshape(out, tf.concat([tf.shape(kernel)[:1], tf.shape(h)[:-1], tf.shape(kernel)[2:]], 0))
        out.set_shape(kernel.shape[:1].concatenate(h.shape[:-1]).concatenate(kernel.shape[-1:]))
    else:
        if len(h.shape) == 3:
            out = tf.matmul(h, kernel)  # batched matmul (K, B, in) @ (K, in, out)
        else:
            shape = tf.shape(h)  # as above: one batched matmul, not an ellipsis einsum
            flat = tf.reshape(h, tf.stack([shape[0], -1, shape[-1]]))
            out = tf.matmul(flat, kernel)
            out = tf.reshape(out, tf.concat([shape[:-1], tf.shape(kernel)[2:]], 0))
            out.set_shape(h.shape[:-1].concatenate(kernel.shape[-1:]))
    if use_bias:
        b = w[1]
        out = out + tf.reshape(b, [tf.shape(b)[0]] + [1] * (len(out.shape) - 2) + [b.shape[-1]])
    return out


def _input_projection(h: tf.Tensor, kernel: tf.Tensor, shared: bool) -> tf.Tensor:
    """x @ kernel for every timestep at once, time-major: (T, K, B, G)."""
    if shared:
        proj = tf.einsum("btf,kfg->tkbg", h, kernel)
    else:
        proj = tf.einsum("kbtf,kfg->tkbg", h, kernel)
    return proj


def _batch_size(proj: tf.Tensor) -> tf.Tensor:
    return tf.shape(proj)[2]


def _finish(outputs: tf.Tensor, last: tf.Tensor, return_sequences: bool) -> tf.Tensor:
    if return_sequences:
        return tf.transpose(outputs, [1, 2, 0, 3])  # (T, K, B, U) -> (K, B, T, U)
    return last


def lstm_eval_in_loop(layer: LayerPlan, timesteps: int | None) -> bool:
    """Whether the forward-only (evaluation) LSTM projects its input inside the time loop."""
    return (
        layer.activation == "tanh"
        and layer.recurrent_activation == "sigmoid"
        and timesteps is not None
        and timesteps > MAX_UNROLL
    )


def _lstm(
    h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool, training: bool, fused: bool
) -> tf.Tensor:
    bias = w[2] if layer.use_bias else None
    steps = None if h.shape[-2] is None else int(h.shape[-2])
    standard = layer.activation == "tanh" and layer.recurrent_activation == "sigmoid"
    if standard and fused and (steps is None or steps > MAX_UNROLL):
        # Without XLA, long sequences: the fused kernel, forward and backward (sensor_lstm, T=100:
        # 2x the scan's rate at batch 32, 1.5x at batch 8). Up to MAX_UNROLL timesteps the
        # unrolled version below is as fast at batch 32 and 1.5x faster at batch 8 (T=20).
        return lstm_fused(h, w[0], w[1], bias, return_sequences=layer.return_sequences, shared=shared)
    if standard and steps is not None:
        if steps <= MAX_UNROLL:
            # The common case (Keras' default activations, short sequences): unrolled, hand-written backward.
            fn = lstm_unrolled if training else lstm_forward_only
            return fn(h, w[0], w[1], bias, return_sequences=layer.return_sequences, shared=shared)
        if not training:
            # Long sequences, evaluation: a loop that projects the input per timestep, so the
            # full-set evaluation fits in one call (the scan below materialises T x K x B x 4U).
            return lstm_forward_loop(
                h, w[0], w[1], bias, return_sequences=layer.return_sequences, shared=shared
            )
    return _lstm_scan(h, w, layer, shared)


def _lstm_scan(h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool) -> tf.Tensor:
    kernel, rk = w[0], w[1]
    bias = w[2] if layer.use_bias else None
    act = _activation(layer.activation)
    ract = _activation(layer.recurrent_activation)
    proj = _input_projection(h, kernel, shared)
    k = tf.shape(kernel)[0]
    zeros = tf.zeros(tf.stack([k, _batch_size(proj), layer.units]), proj.dtype)
    b = bias[:, None, :] if bias is not None else None

    def step(carry: tuple[tf.Tensor, tf.Tensor], xt: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        h_tm1, c_tm1 = carry
        # keras LSTMCell (implementation 2): z = x@k + h@rk + b
        z = xt + tf.matmul(h_tm1, rk)
        if b is not None:
            z = z + b
        z0, z1, z2, z3 = tf.split(z, 4, axis=-1)
        i = ract(z0)
        f = ract(z1)
        c = f * c_tm1 + i * act(z2)
        o = ract(z3)
        return o * act(c), c

    hs, _ = tf.scan(step, proj, initializer=(zeros, zeros))
    return _finish(hs, hs[-1], layer.return_sequences)


def _gru(h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool) -> tf.Tensor:
    kernel, rk = w[0], w[1]
    bias = w[2] if layer.use_bias else None
    u = layer.units
    act = _activation(layer.activation)
    ract = _activation(layer.recurrent_activation)
    proj = _input_projection(h, kernel, shared)
    k = tf.shape(kernel)[0]
    zeros = tf.zeros(tf.stack([k, _batch_size(proj), u]), proj.dtype)
    if bias is not None and layer.reset_after:
        in_b, rec_b = bias[:, 0, None, :], bias[:, 1, None, :]  # bias is (K, 2, 3u)
    elif bias is not None:
        in_b, rec_b = bias[:, None, :], None
    else:
        in_b = rec_b = None
    if in_b is not None:
        proj = proj + in_b[None]

    def step(h_tm1: tf.Tensor, mx: tf.Tensor) -> tf.Tensor:
        x_z, x_r, x_h = mx[..., :u], mx[..., u : 2 * u], mx[..., 2 * u :]
        if layer.reset_after:
            inner = tf.matmul(h_tm1, rk)
            if rec_b is not None:
                inner = inner + rec_b
            r_z, r_r, r_h = inner[..., :u], inner[..., u : 2 * u], inner[..., 2 * u :]
        else:
            inner = tf.matmul(h_tm1, rk[:, :, : 2 * u])
            r_z, r_r = inner[..., :u], inner[..., u:]
        z = ract(x_z + r_z)
        r = ract(x_r + r_r)
        if layer.reset_after:
            rh = r * r_h
        else:
            rh = tf.matmul(r * h_tm1, rk[:, :, 2 * u :])
        hh = act(x_h + rh)
        return z * h_tm1 + (1 - z) * hh

    hs = tf.scan(step, proj, initializer=zeros)
    return _finish(hs, hs[-1], layer.return_sequences)


def _simple_rnn(h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool) -> tf.Tensor:
    kernel, rk = w[0], w[1]
    bias = w[2] if layer.use_bias else None
    act = _activation(layer.activation)
    proj = _input_projection(h, kernel, shared)
    if bias is not None:
        proj = proj + bias[None, :, None, :]
    k = tf.shape(kernel)[0]
    zeros = tf.zeros(tf.stack([k, _batch_size(proj), layer.units]), proj.dtype)

    def step(h_tm1: tf.Tensor, xt: tf.Tensor) -> tf.Tensor:
        return act(xt + tf.matmul(h_tm1, rk))

    hs = tf.scan(step, proj, initializer=zeros)
    return _finish(hs, hs[-1], layer.return_sequences)


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
            weights.extend(np.asarray(w.numpy(), dtype=np.float32) for w in layer.trainable_weights)
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
                )
                for p in plans
            ),
        )
    )
    return (
        StackedPlan(tuple(plans), input_shape, int(out_shape[-1]), signature=signature),
        weights,
    )
