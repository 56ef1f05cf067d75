"""The compiled epoch: every replica of a pack takes its own steps of one epoch in one call.

Each replica gathers its own mini-batches from its own permutation, runs the
same forward pass (``_stacked_model``) and takes its own optimizer step with
its own hyperparameters (``vector_optimizers``) and learning rate. A replica
whose mini-batch loss turns non-finite stops updating (masked) while the
others go on.

Without XLA the batch size and the number of replicas are inputs (dynamic
batch and replica axes), so every batch size, every pack size and the epoch's
short last batch share one step graph. With XLA (static shapes) the batch
size and the pack size are fixed: the last batch has its own step copy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import tensorflow as tf

from workers.training.metrics import per_sample_loss
from workers.training.single_steps import dense_gradient
from workers.training.vector_optimizers import HYPER_NAMES, apply_updates, global_norm

if TYPE_CHECKING:  # compiled.py builds with this module: the import goes one way at run time
    from workers.training.packs.compiled import CompileRequest


class OptimizerState(NamedTuple):
    """Every replica's weights and optimizer slots, stacked on a leading replica axis.

    ``m`` and ``v`` are the two slots of ``vector_optimizers`` (first and second
    moments, or momentum); ``iterations`` counts the steps taken by the pack.
    """

    weights: list[tf.Tensor]
    m: list[tf.Tensor]
    v: list[tf.Tensor]
    iterations: tf.Tensor


class EpochInputs(NamedTuple):
    """What one epoch call needs besides the data and the optimizer state."""

    order: tf.Tensor  # [K, n] int32: each replica's permutation of the training examples
    learning_rates: tf.Tensor  # [steps, K] float32: the lr of every replica at every step
    hyper: dict[str, tf.Tensor]  # HYPER_NAMES -> [K] float32 (vector_optimizers.VectorHyper)
    active: tf.Tensor  # [K] bool: replicas still training (stopped and padding replicas are False)
    dropout_seed: tf.Tensor  # int32, the pack's; the step count is the other half of the key
    batch_size: tf.Tensor  # int32 (read without XLA only; with XLA the batch size is compiled in)


class EpochResult(NamedTuple):
    """The state after the epoch and what the trainer records from it, per replica."""

    state: OptimizerState
    active: tf.Tensor  # [K] bool: False from the first non-finite mini-batch loss on
    bad_loss: tf.Tensor  # [K] that non-finite loss (where it happened)
    sum_loss: tf.Tensor  # [K] sum of the mini-batch losses while active
    sum_grad_norm: tf.Tensor  # [K] sum of the pre-clipping global gradient norms while active
    count: tf.Tensor  # [K] steps taken while active
    step_losses: tf.Tensor  # [steps, K] every mini-batch loss


class _Carry(NamedTuple):
    """The while loop's state: the result so far, the step losses still being written."""

    state: OptimizerState
    active: tf.Tensor
    bad_loss: tf.Tensor
    sum_loss: tf.Tensor
    sum_grad_norm: tf.Tensor
    count: tf.Tensor
    losses: tf.TensorArray


def make_epoch_fn(req: CompileRequest) -> Callable[..., EpochResult]:
    """``epoch_fn(x, y, state, inputs) -> EpochResult``, compiled for ``req``."""
    plan, n, batch, k, jit = req.plan, req.n, req.batch, req.k, req.jit
    loss_fn = per_sample_loss(req.loss)
    full, tail = divmod(n, batch)
    steps = full + (1 if tail else 0)
    # Weights the optimizer steps; the others are state the forward pass moves
    # (BatchNormalization's moving statistics), per replica, only while the replica is active.
    trainable = plan.trainable_indices

    def one_step(
        x: tf.Tensor,
        y: tf.Tensor,
        state: OptimizerState,
        idx: tf.Tensor,
        lr: tf.Tensor,
        hyper: dict[str, tf.Tensor],
        active: tf.Tensor,
        seed: tf.Tensor,
    ) -> tuple[OptimizerState, tf.Tensor, tf.Tensor, tf.Tensor]:
        xb = tf.gather(x, idx)
        yb = tf.gather(y, idx)
        w = state.weights
        w_t = [w[j] for j in trainable]
        updates: dict[int, tf.Tensor] = {}
        with tf.GradientTape() as tape:
            tape.watch(w_t)
            out, _ = plan.forward(
                w, xb, shared_input=False, training=True, seed=seed, fused_rnn=not jit, state_updates=updates
            )
            per = tf.reduce_mean(loss_fn(yb, out), axis=1)  # [K] mean over the batch
            total = tf.reduce_sum(per)  # replicas are independent: d total / d w_k = d per_k / d w_k
        grads = [dense_gradient(g) for g in tape.gradient(total, w_t)]  # as single.py's
        gn = global_norm(grads)
        ok = active & tf.math.is_finite(per)
        new_t, new_m, new_v = apply_updates(
            w_t,
            grads,
            [state.m[j] for j in trainable],
            [state.v[j] for j in trainable],
            state.iterations,
            lr,
            hyper,
            req.kinds,
            active=ok,
        )
        w2, m2, v2 = list(w), list(state.m), list(state.v)
        for j, p, mj, vj in zip(trainable, new_t, new_m, new_v, strict=True):
            w2[j], m2[j], v2[j] = p, mj, vj
        for j, t in updates.items():
            keep = tf.reshape(ok, tf.concat([tf.shape(ok), tf.ones([len(t.shape) - 1], tf.int32)], 0))
            w2[j] = tf.where(keep, t, w[j])
        return OptimizerState(w2, m2, v2, state.iterations + 1.0), per, gn, ok

    def epoch(x: tf.Tensor, y: tf.Tensor, state: OptimizerState, inputs: EpochInputs) -> EpochResult:
        zeros = tf.zeros(tf.shape(inputs.active), tf.float32)
        bsz = inputs.batch_size
        # Without XLA the batch size and the replica axis are inputs, not constants: one
        # compiled epoch serves every batch size and pack size. With XLA shapes are static.
        n_steps = (n + bsz - 1) // bsz if not jit else steps

        def run(i: tf.Tensor, idx: tf.Tensor, c: _Carry) -> _Carry:
            seed = tf.stack([inputs.dropout_seed, tf.cast(c.state.iterations, tf.int32)])
            new_state, per, gn, ok = one_step(
                x, y, c.state, idx, inputs.learning_rates[i], inputs.hyper, c.active, seed
            )
            newly_bad = c.active & ~ok
            return _Carry(
                state=new_state,
                active=ok,
                bad_loss=tf.where(newly_bad, per, c.bad_loss),
                sum_loss=c.sum_loss + tf.where(c.active, per, zeros),
                sum_grad_norm=c.sum_grad_norm + tf.where(c.active, gn, zeros),
                count=c.count + tf.cast(c.active, tf.float32),
                losses=c.losses.write(i, per),
            )

        carry = _Carry(
            state=OptimizerState(list(state.weights), list(state.m), list(state.v), state.iterations),
            active=inputs.active,
            bad_loss=zeros,
            sum_loss=zeros,
            sum_grad_norm=zeros,
            count=zeros,
            losses=tf.TensorArray(tf.float32, size=n_steps),
        )
        perm = inputs.order
        n_full, n_tail = full, tail
        if not jit:
            # One copy of the step for every batch, the short last one included: without XLA
            # the batch axis may be dynamic, so the last step is Keras' partial batch as is
            # (the same mean over its real examples) and the epoch compiles one step graph,
            # not two (compile time roughly halves; no padded arithmetic either).

            def body_dyn(i: tf.Tensor, c: _Carry) -> tuple[tf.Tensor, _Carry]:
                size = tf.minimum(bsz, n - i * bsz)
                idx = tf.slice(perm, tf.stack([0, i * bsz]), tf.stack([-1, size]))  # every replica
                return i + 1, run(i, idx, c)

            _, carry = tf.while_loop(lambda i, _: i < n_steps, body_dyn, (tf.constant(0), carry))
            n_full = n_tail = 0
        if n_full:

            def body(i: tf.Tensor, c: _Carry) -> tuple[tf.Tensor, _Carry]:
                idx = tf.slice(perm, tf.stack([0, i * batch]), [k, batch])
                return i + 1, run(i, idx, c)

            _, carry = tf.while_loop(lambda i, _: i < full, body, (tf.constant(0), carry))
        if n_tail:
            carry = run(tf.constant(full), perm[:, full * batch :], carry)
        return EpochResult(
            state=carry.state,
            active=carry.active,
            bad_loss=carry.bad_loss,
            sum_loss=carry.sum_loss,
            sum_grad_norm=carry.sum_grad_norm,
            count=carry.count,
            step_losses=carry.losses.stack(),
        )

    w_specs = req.weight_specs()
    signature = [
        req.x_spec,
        req.y_spec,
        OptimizerState(w_specs, w_specs, w_specs, tf.TensorSpec((), tf.float32)),
        EpochInputs(
            order=tf.TensorSpec((k, n), tf.int32),
            learning_rates=tf.TensorSpec((None if not jit else steps, k), tf.float32),
            hyper={name: tf.TensorSpec((k,), tf.float32) for name in HYPER_NAMES},
            active=tf.TensorSpec((k,), tf.bool),
            dropout_seed=tf.TensorSpec((), tf.int32),
            batch_size=tf.TensorSpec((), tf.int32),
        ),
    ]
    # autograph=False: this is graph code already (tf.while_loop, tf.cond; Python branches only
    # on static values). Converting it was ~80% of a pack's first call (sensor_lstm 2.46 -> 0.60 s,
    # pixel_color 3.2 -> 1.9 s); a Python branch on a tensor fails loudly at trace time without it.
    compiled: Callable[..., EpochResult] = tf.function(
        epoch, input_signature=signature, jit_compile=jit, reduce_retracing=False, autograph=False
    )
    return compiled
