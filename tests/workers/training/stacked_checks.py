"""Checks shared by the stacked-layer tests: a plan's forward and gradient against Keras'.

``assert_matches_keras`` builds K differently initialised copies of a model,
stacks their weights, and compares the stacked forward (per-replica inputs and
a shared input, in inference) and the gradient of a loss through it with each
Keras model's own output and ``tf.GradientTape`` gradient on the same weights,
and the state a training call moves (moving statistics) with Keras' own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from workers.training._stacked_model import StackedPlan, plan_model


def replicas(build: Callable[[], Any], k: int) -> tuple[StackedPlan, list[Any], list[tf.Tensor]]:
    """K Keras models of one architecture (seeds 0..k-1), the plan, the stacked weights."""
    models = []
    per_model = []
    plan = None
    for seed in range(k):
        keras.utils.set_random_seed(seed)
        model = build()
        plan, weights = plan_model(model)
        models.append(model)
        per_model.append(weights)
    assert plan is not None
    stacked = [tf.constant(np.stack([ws[j] for ws in per_model])) for j in range(len(per_model[0]))]
    return plan, models, stacked


def assert_matches_keras(
    build: Callable[[], Any], x: np.ndarray, k: int = 3, rtol: float = 1e-5, *, xla_path: bool = False
) -> StackedPlan:
    """``xla_path``: the arithmetic the plan uses under XLA (run here without it)."""
    plan, models, stacked = replicas(build, k)
    xk = tf.constant(np.stack([x + 0.1 * i for i in range(k)]).astype(np.float32))
    trainable = [w for w, t in zip(stacked, plan.trainable_mask, strict=True) if t]
    updates: dict[int, tf.Tensor] = {}
    with tf.GradientTape() as tape:
        tape.watch(trainable)
        out, _ = plan.forward(
            stacked, xk, shared_input=False, training=True, fused_rnn=not xla_path, state_updates=updates
        )
        loss = tf.reduce_sum(tf.reduce_mean(tf.square(out), axis=list(range(1, len(out.shape)))))
    grads = tape.gradient(loss, trainable)
    assert sorted(updates) == [j for j, t in enumerate(plan.trainable_mask) if not t]
    shared_out, _ = plan.forward(
        stacked, tf.constant(x), shared_input=True, training=False, fused_rnn=not xla_path
    )
    for i, model in enumerate(models):
        # Inference first: Keras' training call below moves its moving statistics.
        scale = float(np.max(np.abs(shared_out[i].numpy()))) + 1e-6
        np.testing.assert_allclose(shared_out[i].numpy(), model(x).numpy(), rtol=rtol, atol=rtol * scale)
        with tf.GradientTape() as tape:
            ref = model(xk[i], training=True)
            ref_loss = tf.reduce_mean(tf.square(ref))
        ref_grads = tape.gradient(ref_loss, model.trainable_weights)
        scale = float(np.max(np.abs(ref.numpy()))) + 1e-6
        np.testing.assert_allclose(out[i].numpy(), ref.numpy(), rtol=rtol, atol=rtol * scale)
        assert len(ref_grads) == len(grads)
        # Absolute tolerance from the largest gradient of the replica: some gradients are zero
        # but for rounding (a bias right before a batch normalisation).
        gs = max(float(np.max(np.abs(rg.numpy()))) for rg in ref_grads) + 1e-6
        for g, rg in zip(grads, ref_grads, strict=True):
            np.testing.assert_allclose(g[i].numpy(), rg.numpy(), rtol=rtol, atol=rtol * gs)
        # State the training call moved (BatchNormalization's moving statistics): the same new values.
        moved = [updates[j][i].numpy() for j in sorted(updates)]
        assert len(moved) == len(model.non_trainable_weights)
        for new, ref_state in zip(moved, model.non_trainable_weights, strict=True):
            np.testing.assert_allclose(new, ref_state.numpy(), rtol=rtol, atol=rtol)
    return plan
