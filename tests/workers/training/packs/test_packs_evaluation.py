"""The full-set evaluation of a pack: chunk sizing under the memory and cache budgets."""

from __future__ import annotations

import tensorflow as tf

from workers.training._stacked_model import LayerPlan, StackedPlan
from workers.training.packs.compiled import CompileRequest
from workers.training.packs.evaluation import (
    EVAL_BUDGET_FLOATS,
    EVAL_CACHE_FLOATS,
    eval_chunk_size,
    eval_floats_per_sample,
)


def _sensor_lstm_plan() -> StackedPlan:
    return StackedPlan(
        (
            LayerPlan("lstm", "l", units=32, activation="tanh", weight_shapes=((1, 128), (32, 128), (128,))),
            LayerPlan("dense", "d", units=6, activation="softmax", weight_shapes=((32, 6), (6,))),
        ),
        (100, 1),
        6,
    )


def _request(plan: StackedPlan, *, k_budget: int, n_eval: int, jit_eval: bool = False) -> CompileRequest:
    return CompileRequest(
        plan=plan,
        loss="sparse_categorical_crossentropy",
        kind="integer",
        batch=32,
        k=None,
        k_budget=k_budget,
        n=n_eval,
        n_eval_max=n_eval,
        x_spec=tf.TensorSpec((n_eval, *plan.input_shape), tf.float32),
        y_spec=tf.TensorSpec((n_eval,), tf.int64),
        kinds=frozenset({"adam"}),
        jit=False,
        jit_eval=jit_eval,
    )


def test_long_sequence_evaluation_runs_in_one_chunk() -> None:
    """sensor_lstm's shape (T=100 > MAX_UNROLL): the full-set evaluation is one call at K=64."""
    plan = _sensor_lstm_plan()
    for fused in (True, False):  # BlockLSTM (CPU) or the loop that projects inside (XLA)
        assert EVAL_BUDGET_FLOATS // eval_floats_per_sample(plan, 64, fused=fused) >= 98
    for jit_eval in (False, True):  # the fused LSTM's per-replica scratch is not held to the cache budget
        assert eval_chunk_size(_request(plan, k_budget=64, n_eval=98, jit_eval=jit_eval)) == 98


def test_wide_stacked_activations_are_evaluated_in_cache_sized_chunks() -> None:
    """A wide layer x 64 replicas over 400 examples: one call fits memory, not the cache budget."""
    plan = StackedPlan(
        (
            LayerPlan("dense", "h", units=1024, activation="relu", weight_shapes=((64, 1024), (1024,))),
            LayerPlan("dense", "d", units=10, activation="softmax", weight_shapes=((1024, 10), (10,))),
        ),
        (64,),
        10,
    )
    assert EVAL_BUDGET_FLOATS // eval_floats_per_sample(plan, 64, fused=True) >= 400  # memory: one call
    chunk = eval_chunk_size(_request(plan, k_budget=64, n_eval=400))
    assert 2 * 64 * 1024 * chunk <= EVAL_CACHE_FLOATS
    assert chunk == 100  # the fewest equal chunks (4) within the cache budget (128 examples)
