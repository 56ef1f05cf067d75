"""A weight-stacked Keras LSTM (tanh / sigmoid) as one fused kernel call per replica.

Why: TensorFlow's ``BlockLSTM`` op runs the whole sequence in C++ (the cell's
matmul and every gate nonlinearity per timestep, no executor dispatch per
op), and its registered gradient ``BlockLSTMGrad`` runs the backward the same
way. One ``BlockLSTM`` per replica in a ``tf.map_fn`` over the replica axis
beat the batched ``tf.scan`` + autodiff by 2.0-2.3x for the forward+backward
of sensor_lstm's LSTM(32) over 100 timesteps at batch 32 (K=16: 127 -> 63 ms,
K=64: 504 -> 234 ms, one thread), and was a little slower at batch 2 (K=64:
76 -> 89 ms; the pack trainer runs batch 2 under XLA on CPU); its gradients
agree with autodiff to ~2e-7 relative. ``map_fn`` rather than a Python loop
over replicas: the same speed, and the graph stays one loop body, so it
compiles in ~0.5 s instead of ~5 s at K=64 (benchmarks/README.md).

Not under XLA (no XLA kernel for the op): the pack trainer uses it for the
functions it compiles without ``jit_compile`` (larger batch sizes on CPU).

``BlockLSTM`` (v1) orders the gates i, c, f, o; Keras orders them i, f, c, o,
so the weights are permuted on the way in (a copy of the gate columns, and
the permutation's gradient maps them back). ``BlockLSTMV2`` takes Keras'
order directly but its registered gradient disagreed with autodiff by 100%
here (TF 2.21): not used. ``forget_bias=0`` and ``cell_clip=-1`` (off) make
the cell Keras' ``LSTMCell`` exactly: ``z = [x, h] @ [kernel; recurrent] +
bias``, ``c = f * c + i * tanh(z_c)``, ``h = o * tanh(c)``.
"""

from __future__ import annotations

import tensorflow as tf


def _icfo(t: tf.Tensor, units: int) -> tf.Tensor:
    """Keras' gate columns (i, f, c, o) in BlockLSTM's order (i, c, f, o)."""
    u = units
    return tf.concat([t[..., :u], t[..., 2 * u : 3 * u], t[..., u : 2 * u], t[..., 3 * u :]], axis=-1)


def lstm_fused(
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
    u = int(rk.shape[1])
    k = tf.shape(kernel)[0]
    w = _icfo(tf.concat([kernel, rk], axis=1), u)  # (K, F + U, 4U): rows [input; recurrent]
    b = _icfo(bias, u) if bias is not None else tf.zeros(tf.stack([k, 4 * u]), kernel.dtype)
    # Time-major input, as the op wants it: (T, B, F), or (K, T, B, F) per replica.
    xt = tf.transpose(x, [1, 0, 2]) if shared else tf.transpose(x, [0, 2, 1, 3])
    steps = tf.shape(xt)[-3]
    batch = tf.shape(xt)[-2]
    zeros = tf.zeros(tf.stack([batch, u]), kernel.dtype)
    no_peephole = tf.zeros([u], kernel.dtype)

    def one(x_k: tf.Tensor, w_k: tf.Tensor, b_k: tf.Tensor) -> tf.Tensor:
        hs = tf.raw_ops.BlockLSTM(
            seq_len_max=tf.cast(steps, tf.int64),
            x=x_k,
            cs_prev=zeros,
            h_prev=zeros,
            w=w_k,
            wci=no_peephole,
            wcf=no_peephole,
            wco=no_peephole,
            b=b_k,
            forget_bias=0.0,
            cell_clip=-1.0,
            use_peephole=False,
        )[6]  # h for every timestep, (T, B, U)
        return tf.transpose(hs, [1, 0, 2]) if return_sequences else hs[-1]

    # One replica at a time (parallel_iterations=1): the evaluation's memory budget counts one
    # replica's seven (T, B, U) outputs (packs.evaluation.eval_floats_per_sample); a worker runs one thread.
    # A shared input is closed over rather than mapped, so it is not copied per replica.
    elems = (w, b) if shared else (xt, w, b)
    fn = (lambda e: one(xt, *e)) if shared else (lambda e: one(*e))
    out = tf.map_fn(fn, elems, fn_output_signature=tf.float32, parallel_iterations=1)
    lead = kernel.shape[:1].concatenate(x.shape[-3:-2])  # (K, B), shared or not
    out.set_shape(lead.concatenate(x.shape[-2:-1] if return_sequences else []).concatenate([u]))
    result: tf.Tensor = out
    return result
