"""A weight-stacked Keras LSTM (tanh / sigmoid) with its time loop unrolled and a hand-written backward pass.

Why: for the small recurrent models of the presets, a packed step is bound by
the number of ops the TensorFlow executor runs per timestep, not by
arithmetic. ``tf.scan`` + autodiff costs, per timestep, the cell's ~12 forward
ops, ~25 backward ops (two of them weight-gradient matmuls that accumulate
into the loop state) and the while loop's own bookkeeping (TensorList
push/pop of every intermediate, loop-variable plumbing). Here:

- the time loop is unrolled in Python (a static graph of T cells), so no
  loop bookkeeping runs at all;
- the forward keeps each step's gates, cell state and output, and every
  quantity the backward needs that does not depend on the incoming gradient
  (gate derivatives, ``o * (1 - tanh(c)^2)``...) is computed once for all
  timesteps in a few large vectorised ops;
- the backward time loop is 6-7 small ops per timestep: the gradient of the
  pre-activations ``dz_t`` and the one recurrent matmul ``dz_t @ rk^T``;
- the weight gradients (kernel, recurrent kernel, bias) and the input
  gradient are each one einsum over all timesteps after the loop, large
  enough for the CPU's matmul kernels to run efficiently.

Arithmetic is Keras' ``LSTMCell`` (implementation 2) op for op in the
forward: ``z = x @ kernel + h @ recurrent_kernel + bias``, gates in Keras'
order ``i, f, c, o``. The backward is the exact derivative, written out; it
rounds differently from autodiff in the last bit only.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

# Longest sequence unrolled; longer ones use the tf.scan version. Graph size and
# compile time grow linearly with the timesteps: at T=100 (sensor_lstm) steps ran
# 1.3-1.5x faster but compiling took 11-15 s instead of 3-6 s (28 s with two
# workers compiling at once), which lost more than it gained on sweeps of a few
# minutes (benchmarks/README.md). Short sequences compile quickly either way.
MAX_UNROLL = 32


def lstm_unrolled(
    x: tf.Tensor,
    kernel: tf.Tensor,
    rk: tf.Tensor,
    bias: tf.Tensor | None,
    *,
    return_sequences: bool,
    shared: bool,
) -> tf.Tensor:
    """Outputs of K stacked LSTMs: ``(K, B, U)`` or ``(K, B, T, U)`` with ``return_sequences``.

    ``x`` is ``(K, B, T, F)``, or ``(B, T, F)`` fed to every replica when
    ``shared``; ``kernel`` ``(K, F, 4U)``, ``rk`` ``(K, U, 4U)``, ``bias``
    ``(K, 4U)`` or None.
    """
    has_bias = bias is not None
    b = bias if bias is not None else tf.zeros([tf.shape(kernel)[0], kernel.shape[-1]], kernel.dtype)

    @tf.custom_gradient  # type: ignore[untyped-decorator]
    def run(x: tf.Tensor, kernel: tf.Tensor, rk: tf.Tensor, b: tf.Tensor) -> Any:
        return _forward_backward(x, kernel, rk, b, has_bias, return_sequences, shared)

    out: tf.Tensor = run(x, kernel, rk, b)
    return out


def _gate_major(kernel: tf.Tensor, rk: tf.Tensor, b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Weights with the gate axis first: ``(4, K, F, U)``, ``(4, K, U, U)``, ``(4, K, 1, U)``.

    With the gates on the leading axis, splitting the pre-activations into
    i, f, c, o is four contiguous copies; splitting the last axis of a
    ``(K, B, 4U)`` tensor is a strided copy that cost more than the matmul
    (op profile in benchmarks/README.md).
    """
    k = tf.shape(kernel)[0]
    u = int(rk.shape[1])
    f = int(kernel.shape[1])
    k4 = tf.transpose(tf.reshape(kernel, tf.stack([k, f, 4, u])), [2, 0, 1, 3])
    r4 = tf.transpose(tf.reshape(rk, tf.stack([k, u, 4, u])), [2, 0, 1, 3])
    b4 = tf.transpose(tf.reshape(b, tf.stack([k, 1, 4, u])), [2, 0, 1, 3])
    return k4, r4, b4


def _time_major(x: tf.Tensor, shared: bool) -> tf.Tensor:
    """Inputs as ``(T, 1, K or 1, B, F)``: per timestep a slice that broadcasts over the gate axis."""
    xt = tf.transpose(x, [1, 0, 2]) if shared else tf.transpose(x, [2, 0, 1, 3])
    return xt[:, None, None] if shared else xt[:, None]


def _forward_backward(
    x: tf.Tensor,
    kernel: tf.Tensor,
    rk: tf.Tensor,
    b: tf.Tensor,
    has_bias: bool,
    return_sequences: bool,
    shared: bool,
) -> tuple[tf.Tensor, Any]:
    k4, r4, b4 = _gate_major(kernel, rk, b)
    xs = _time_major(x, shared)
    steps = int(xs.shape[0])
    batch = tf.shape(x)[0] if shared else tf.shape(x)[1]
    h = c = tf.zeros(tf.stack([tf.shape(kernel)[0], batch, int(rk.shape[1])]), kernel.dtype)
    gates, cs, tcs, hs = [], [c], [], [h]
    xk = tf.matmul(xs, k4[None])  # (T, 4, K, B, U): the input projection of every timestep at once
    for t in range(steps):
        # keras LSTMCell (implementation 2): z = x @ kernel + h @ recurrent_kernel + bias
        z = xk[t] + tf.matmul(h[None], r4)
        if has_bias:
            z = z + b4
        zi, zf, zg, zo = tf.unstack(z)
        i, f, g, o = tf.sigmoid(zi), tf.sigmoid(zf), tf.tanh(zg), tf.sigmoid(zo)
        c = f * c + i * g
        tc = tf.tanh(c)
        h = o * tc
        gates.append((i, f, g, o))
        cs.append(c)
        tcs.append(tc)
        hs.append(h)
    out = tf.transpose(tf.stack(hs[1:]), [1, 2, 0, 3]) if return_sequences else h

    def grad(dy: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        dys = tf.unstack(dy, axis=2) if return_sequences else None
        dh_rec = dc = tf.zeros_like(h)
        dzs: list[tf.Tensor] = []
        for t in reversed(range(steps)):
            i, f, g, o = gates[t]
            tc = tcs[t]
            if dys is not None:
                dh = dh_rec + dys[t]
            elif t == steps - 1:
                dh = dh_rec + dy
            else:
                dh = dh_rec
            dc = dc + dh * o * (1.0 - tc * tc)
            dz = tf.stack(
                [
                    dc * g * i * (1.0 - i),
                    dc * cs[t] * f * (1.0 - f),
                    dc * i * (1.0 - g * g),
                    dh * tc * o * (1.0 - o),
                ]
            )
            dc = dc * f
            dzs.append(dz)
            if t > 0:
                # AddN over the unstacked gate axis: reduce_sum over a leading axis of 4 ran 10x slower.
                dh_rec = tf.add_n(tf.unstack(tf.matmul(dz, r4, adjoint_b=True)))
        kk = tf.shape(kernel)[0]
        u = int(rk.shape[1])
        dz_all = tf.stack(dzs[::-1])  # (T, 4, K, B, U)
        # Weight and input gradients: one matmul each with time x batch as the contraction,
        # in Keras' (K, ., 4U) layout. (A matmul per timestep, or a batched matmul over time
        # followed by a sum over time, profiled 2-3x slower.)
        dz_k = tf.reshape(tf.transpose(dz_all, [2, 0, 3, 1, 4]), tf.stack([kk, -1, 4 * u]))  # (K, T*B, 4U)
        h_prev = tf.reshape(tf.transpose(tf.stack(hs[:-1]), [1, 0, 2, 3]), tf.stack([kk, -1, u]))
        d_rk = tf.matmul(h_prev, dz_k, adjoint_a=True)
        f_in = int(kernel.shape[1])
        if shared:
            x_k = tf.reshape(xs, [1, -1, f_in])  # (1, T*B, F)
        else:
            x_k = tf.reshape(tf.transpose(xs[:, 0], [1, 0, 2, 3]), tf.stack([kk, -1, f_in]))
        d_kernel = tf.matmul(x_k, dz_k, adjoint_a=True)
        d_b = tf.reshape(tf.matmul(tf.ones([1, 1, tf.shape(dz_k)[1]], dz_k.dtype), dz_k), tf.shape(b))
        dx_k = tf.matmul(dz_k, kernel, adjoint_b=True)  # (K, T*B, F)
        if shared:
            dx = tf.transpose(tf.reshape(tf.reduce_sum(dx_k, 0), tf.stack([steps, batch, f_in])), [1, 0, 2])
        else:
            dx = tf.transpose(tf.reshape(dx_k, tf.stack([kk, steps, batch, f_in])), [0, 2, 1, 3])
        return dx, d_kernel, d_rk, d_b

    return out, grad


def lstm_forward_only(
    x: tf.Tensor,
    kernel: tf.Tensor,
    rk: tf.Tensor,
    bias: tf.Tensor | None,
    *,
    return_sequences: bool,
    shared: bool,
) -> tf.Tensor:
    """The same forward without keeping anything for a backward pass (evaluation)."""
    b = bias if bias is not None else tf.zeros([tf.shape(kernel)[0], kernel.shape[-1]], kernel.dtype)
    k4, r4, b4 = _gate_major(kernel, rk, b)
    xs = _time_major(x, shared)
    batch = tf.shape(x)[0] if shared else tf.shape(x)[1]
    h = c = tf.zeros(tf.stack([tf.shape(kernel)[0], batch, int(rk.shape[1])]), kernel.dtype)
    hs = []
    xk = tf.matmul(xs, k4[None])
    for t in range(int(xs.shape[0])):
        z = xk[t] + tf.matmul(h[None], r4)
        if bias is not None:
            z = z + b4
        zi, zf, zg, zo = tf.unstack(z)
        c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zg)
        h = tf.sigmoid(zo) * tf.tanh(c)
        if return_sequences:
            hs.append(h)
    return tf.transpose(tf.stack(hs), [1, 2, 0, 3]) if return_sequences else h


def lstm_forward_loop(
    x: tf.Tensor,
    kernel: tf.Tensor,
    rk: tf.Tensor,
    bias: tf.Tensor | None,
    *,
    return_sequences: bool,
    shared: bool,
) -> tf.Tensor:
    """Forward only, as a ``tf.while_loop`` with the input projection inside the step (evaluation).

    For sequences too long to unroll. Nothing is kept for a backward pass and
    the input projection ``x_t @ kernel`` is computed per timestep instead of
    for all timesteps at once, so memory is ``O(K * B * 4U)`` (plus the outputs
    with ``return_sequences``), not ``O(T * K * B * 4U)``: the full-set
    evaluation runs in one call instead of many small chunks. With one input
    feature the projection is a broadcast product (the same single rounding as
    a matmul with a contraction of 1). Arithmetic as Keras' ``LSTMCell``
    (implementation 2): ``z = x @ kernel + h @ recurrent_kernel + bias``.
    """
    has_bias = bias is not None
    b = bias if bias is not None else tf.zeros([tf.shape(kernel)[0], kernel.shape[-1]], kernel.dtype)
    k4, r4, b4 = _gate_major(kernel, rk, b)
    xs = _time_major(x, shared)  # (T, 1, K or 1, B, F)
    steps = int(xs.shape[0])
    one_feature = int(xs.shape[-1]) == 1
    batch = tf.shape(x)[0] if shared else tf.shape(x)[1]
    zeros = tf.zeros(tf.stack([tf.shape(kernel)[0], batch, int(rk.shape[1])]), kernel.dtype)

    def body(t: tf.Tensor, h: tf.Tensor, c: tf.Tensor, hs: tf.TensorArray) -> tuple[Any, ...]:
        xt = xs[t]
        # (1, K or 1, B, F) against (4, K, F, U): with F = 1, (.., B, 1) * (.., 1, U) broadcasts
        xk = xt * k4 if one_feature else tf.matmul(xt, k4)
        z = xk + tf.matmul(h[None], r4)
        if has_bias:
            z = z + b4
        zi, zf, zg, zo = tf.unstack(z)
        c = tf.sigmoid(zf) * c + tf.sigmoid(zi) * tf.tanh(zg)
        h = tf.sigmoid(zo) * tf.tanh(c)
        if return_sequences:
            hs = hs.write(t, h)
        return t + 1, h, c, hs

    hs0 = tf.TensorArray(kernel.dtype, size=steps if return_sequences else 0)
    _, h, _, hs = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), zeros, zeros, hs0))
    if return_sequences:
        return tf.transpose(hs.stack(), [1, 2, 0, 3])  # (T, K, B, U) -> (K, B, T, U)
    out: tf.Tensor = h
    return out
