"""The stacked layers' arithmetic: Keras' Dense, LSTM, GRU and SimpleRNN, op for op, over K replicas.

Each function takes activations ``h`` with a leading replica axis and the
layer's weights stacked the same way (``(K, *shape)``; ``shared=True`` when
the input is the same for every replica, as for the first layer), and
returns what the Keras layer would return for each replica. The plan that
decides which function runs for which layer is in ``_stacked_model``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import keras
import tensorflow as tf

from workers.training._lstm_fused import lstm_fused
from workers.training._lstm_unrolled import MAX_UNROLL, lstm_forward_loop, lstm_forward_only, lstm_unrolled

if TYPE_CHECKING:
    from workers.training._stacked_model import LayerPlan


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


def _time_major_mask(mask: tf.Tensor | None) -> tf.Tensor | None:
    """Keras' ``(K or 1, batch, T)`` mask as ``(T, K or 1, batch, 1)``, one slice per scan step."""
    if mask is None:
        return None
    return tf.transpose(mask, [2, 0, 1])[..., None]


def _scan_masked(
    step: Callable[[Any, tf.Tensor], Any], proj: tf.Tensor, init: Any, mask: tf.Tensor | None
) -> Any:
    """``tf.scan(step, proj, init)``; at a masked step every state keeps its previous value.

    That is Keras' rnn with a mask (and ``zero_output_for_mask=False``): the
    states carry through masked steps and the output there repeats the previous
    output, which for these cells is the state ``h`` itself.
    """
    if mask is None:
        return tf.scan(step, proj, initializer=init)

    def masked_step(carry: Any, elems: tuple[tf.Tensor, tf.Tensor]) -> Any:
        xt, mt = elems
        new = step(carry, xt)
        return tf.nest.map_structure(lambda n, o: tf.where(mt, n, o), new, carry)

    return tf.scan(masked_step, (proj, mask), initializer=init)


def lstm_eval_in_loop(layer: LayerPlan, timesteps: int | None) -> bool:
    """Whether the forward-only (evaluation) LSTM projects its input inside the time loop."""
    return (
        layer.activation == "tanh"
        and layer.recurrent_activation == "sigmoid"
        and timesteps is not None
        and timesteps > MAX_UNROLL
    )


def recurrent(
    h: tf.Tensor,
    w: list[tf.Tensor],
    layer: LayerPlan,
    shared: bool,
    training: bool,
    fused: bool,
    mask: tf.Tensor | None,
) -> tf.Tensor:
    """The LSTM, GRU or SimpleRNN ``layer.kind`` over ``h``, behind Keras' mask if any."""
    if layer.kind == "lstm":
        return _lstm(h, w, layer, shared, training, fused, mask=mask)
    if layer.kind == "gru":
        return _gru(h, w, layer, shared, mask=mask)
    return _simple_rnn(h, w, layer, shared, mask=mask)


def _lstm(
    h: tf.Tensor,
    w: list[tf.Tensor],
    layer: LayerPlan,
    shared: bool,
    training: bool,
    fused: bool,
    mask: tf.Tensor | None = None,
) -> tf.Tensor:
    if mask is not None:  # the fast paths below have no mask: the scan carries states through it
        return _lstm_scan(h, w, layer, shared, mask)
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


def _lstm_scan(
    h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool, mask: tf.Tensor | None = None
) -> tf.Tensor:
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

    hs, _ = _scan_masked(step, proj, (zeros, zeros), _time_major_mask(mask))
    return _finish(hs, hs[-1], layer.return_sequences)


def _gru(
    h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool, mask: tf.Tensor | None = None
) -> tf.Tensor:
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

    hs = _scan_masked(step, proj, zeros, _time_major_mask(mask))
    return _finish(hs, hs[-1], layer.return_sequences)


def _simple_rnn(
    h: tf.Tensor, w: list[tf.Tensor], layer: LayerPlan, shared: bool, mask: tf.Tensor | None = None
) -> tf.Tensor:
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

    hs = _scan_masked(step, proj, zeros, _time_major_mask(mask))
    return _finish(hs, hs[-1], layer.return_sequences)
