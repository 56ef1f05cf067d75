"""The unrolled LSTM of the stacked model against tf.scan and autodiff."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("f", [1, 2])
def test_unrolled_lstm_matches_scan_and_autodiff(return_sequences: bool, shared: bool, f: int) -> None:
    import tensorflow as tf

    from workers.training._lstm_unrolled import lstm_forward_loop, lstm_forward_only, lstm_unrolled
    from workers.training._stacked_layers import _lstm_scan
    from workers.training._stacked_model import LayerPlan

    rng = np.random.default_rng(0)
    k, b, t, u = 3, 4, 7, 5
    x = tf.constant(rng.normal(size=(b, t, f) if shared else (k, b, t, f)).astype(np.float32))
    w = [
        tf.constant(0.5 * rng.normal(size=s).astype(np.float32))
        for s in [(k, f, 4 * u), (k, u, 4 * u), (k, 4 * u)]
    ]
    plan = LayerPlan("lstm", "l", units=u, activation="tanh", return_sequences=return_sequences)

    def outputs_and_grads(fn: Any) -> list[np.ndarray]:
        with tf.GradientTape() as tape:
            tape.watch(w)
            tape.watch(x)
            y = fn()
            loss = tf.reduce_sum(tf.sin(1.3 * y))
        return [t_.numpy() for t_ in [y, *tape.gradient(loss, [x, *w])]]

    ours = outputs_and_grads(
        lambda: lstm_unrolled(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    )
    ref = outputs_and_grads(lambda: _lstm_scan(x, w, plan, shared))
    for a, r in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a, r, atol=1e-5)
    fwd = lstm_forward_only(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    np.testing.assert_allclose(fwd.numpy(), ref[0], atol=1e-6)
    # Evaluation of long sequences: input projected inside a while loop (graph mode, as compiled).
    loop = tf.function(
        lambda: lstm_forward_loop(x, w[0], w[1], w[2], return_sequences=return_sequences, shared=shared)
    )()
    np.testing.assert_allclose(loop.numpy(), ref[0], atol=1e-6)
    no_bias = lstm_forward_loop(x, w[0], w[1], None, return_sequences=return_sequences, shared=shared)
    ref_nb = _lstm_scan(
        x,
        w[:2],
        LayerPlan("lstm", "l", units=u, activation="tanh", use_bias=False, return_sequences=return_sequences),
        shared,
    )
    np.testing.assert_allclose(no_bias.numpy(), ref_nb.numpy(), atol=1e-6)
