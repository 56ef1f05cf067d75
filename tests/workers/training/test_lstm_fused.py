"""TensorFlow's fused BlockLSTM per replica against tf.scan and autodiff."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("use_bias", [False, True])
def test_fused_lstm_matches_scan_and_autodiff(return_sequences: bool, shared: bool, use_bias: bool) -> None:
    """TensorFlow's BlockLSTM per replica (gates permuted to its i, c, f, o order) is Keras' cell.

    Outputs and the gradients of its registered backward against tf.scan + autodiff, in a
    compiled function with a dynamic batch axis, as the pack trainer calls it.
    """
    import tensorflow as tf

    from workers.training._lstm_fused import lstm_fused
    from workers.training._stacked_layers import _lstm_scan
    from workers.training._stacked_model import LayerPlan

    rng = np.random.default_rng(1)
    k, b, t, f, u = 3, 4, 40, 2, 5
    x = tf.constant(rng.normal(size=(b, t, f) if shared else (k, b, t, f)).astype(np.float32))
    shapes = [(k, f, 4 * u), (k, u, 4 * u)] + ([(k, 4 * u)] if use_bias else [])
    w = [tf.constant(0.5 * rng.normal(size=s).astype(np.float32)) for s in shapes]
    plan = LayerPlan(
        "lstm", "l", units=u, activation="tanh", use_bias=use_bias, return_sequences=return_sequences
    )
    x_spec = tf.TensorSpec([None, *x.shape[1:]] if shared else [k, None, *x.shape[2:]], tf.float32)

    def outputs_and_grads(fn: Any) -> list[np.ndarray]:
        @tf.function(input_signature=[x_spec, [tf.TensorSpec(s, tf.float32) for s in shapes]])
        def run(x: tf.Tensor, w: list[tf.Tensor]) -> list[tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(w)
                tape.watch(x)
                y = fn(x, w)
                loss = tf.reduce_sum(tf.sin(1.3 * y))
            return [y, *tape.gradient(loss, [x, *w])]

        return [t_.numpy() for t_ in run(x, w)]

    ours = outputs_and_grads(
        lambda x, w: lstm_fused(
            x, w[0], w[1], w[2] if use_bias else None, return_sequences=return_sequences, shared=shared
        )
    )
    ref = outputs_and_grads(lambda x, w: _lstm_scan(x, w, plan, shared))
    assert ours[0].shape == ((k, b, t, u) if return_sequences else (k, b, u))
    for a, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, r, atol=2e-5)
