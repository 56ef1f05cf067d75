"""The full-set evaluation of a pack: chunk sizing under the memory budget."""

from __future__ import annotations

from workers.training._stacked_model import LayerPlan, StackedPlan
from workers.training.packs.evaluation import EVAL_BUDGET_FLOATS, eval_floats_per_sample


def test_long_sequence_evaluation_runs_in_one_chunk() -> None:
    """sensor_lstm's shape (T=100 > MAX_UNROLL): the full-set evaluation is one call at K=64."""
    plan = StackedPlan(
        (
            LayerPlan("lstm", "l", units=32, activation="tanh", weight_shapes=((1, 128), (32, 128), (128,))),
            LayerPlan("dense", "d", units=6, activation="softmax", weight_shapes=((32, 6), (6,))),
        ),
        (100, 1),
        6,
    )
    for fused in (True, False):  # BlockLSTM (CPU) or the loop that projects inside (XLA)
        assert EVAL_BUDGET_FLOATS // eval_floats_per_sample(plan, 64, fused=fused) >= 98
