"""Full-set loss and accuracy of every replica of a pack, after each epoch.

The training (and validation) set is evaluated in fixed-size chunks, the last
one padded and masked, so that one compiled function serves every call. The
chunk is as large as a memory budget allows (one call per set when it fits).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from workers.training._stacked_layers import lstm_eval_in_loop
from workers.training._stacked_model import StackedPlan
from workers.training.metrics import hits, per_sample_loss
from workers.training.packs.stats import PackStats
from workers.training.packs.workload_data import WorkloadData

if TYPE_CHECKING:  # compiled.py builds with this module: the import goes one way at run time
    from workers.training.packs.compiled import CompiledPack, CompileRequest

# Float32 values the full-set evaluation may hold at once (per call), ~256 MB.
EVAL_BUDGET_FLOATS = 64 * 1024 * 1024
# Float32 values of the stacked activations one call may hold for ``k_budget`` replicas (the
# pack cap, usually 64), ~64 MB; ~16 MB for the packs of 16 a sweep of 32 runs forms: a chunk's
# activations stay near the cache. One call over the whole set was memory-bound where
# K x channels is wide. Steady-state evaluation per epoch at batch 32, K 16-32 on the 2-core
# CPU (benchmarks/profile_packs.py), one call -> chunks of ~16 MB for the pack's K:
# pixel_cnn 82 -> 37 ms, digits_cnn 110 -> 45, tokens_lstm 81 -> 55, sequence_rnn 64 -> 43,
# residual_mlp 31 -> 18; chunks 4x smaller lost to the per-call cost (pixel_cnn K 8-16
# through the service: 35-52 ms). A fused LSTM's per-replica scratch is not counted (one
# replica at a time): sensor_lstm was 10% slower in smaller chunks.
EVAL_CACHE_FLOATS = 16 * 1024 * 1024

_Chunk = tuple[tf.Tensor, tf.Tensor, tf.Tensor, int]  # x, y, mask of the real examples, how many


def eval_floats_per_sample(plan: StackedPlan, k: int, *, fused: bool) -> int:
    """Float32 values one evaluated sample holds at the peak, for a pack of k replicas.

    Layers run stacked (all k replicas at once), except a fused LSTM (``fused``:
    evaluation without XLA), which runs one replica at a time and keeps all seven
    of BlockLSTM's per-timestep outputs (``_lstm_fused``).
    """
    stacked, one_replica = _peak_floats(plan, fused=fused)
    return 2 * max(k * stacked, one_replica)


def _peak_floats(plan: StackedPlan, *, fused: bool) -> tuple[int, int]:
    """Per evaluated sample: the largest stacked activation of one replica, and a fused LSTM's scratch."""
    peak = int(np.prod(plan.input_shape))
    one_replica = 0
    for layer, (shape, shape_out) in zip(plan.layers, plan.shapes(), strict=True):
        if layer.kind in ("lstm", "gru", "simple_rnn"):
            gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[layer.kind]
            if layer.kind == "lstm" and not layer.masked and lstm_eval_in_loop(layer, shape[0]):
                if fused:
                    one_replica = max(one_replica, 7 * shape[0] * layer.units)
                # Input projected inside the time loop: one timestep's gates (and h, c) at a time.
                peak = max(peak, layer.units * (gates + 2))
            else:  # the input projection of every timestep is materialised
                peak = max(peak, shape[0] * layer.units * gates)
        elif layer.kind == "bidirectional":  # both directions' projections (tf.scan or unrolled)
            gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[layer.option("cell")]
            peak = max(peak, 2 * shape[0] * layer.units * gates)
        peak = max(peak, int(np.prod(shape_out)))
    return peak, one_replica


def eval_chunk_size(req: CompileRequest) -> int:
    """Examples per evaluation call: the fewest equal chunks within the memory and cache budgets."""
    fused = not req.jit_eval
    per_sample = eval_floats_per_sample(req.plan, req.k_budget, fused=fused)
    stacked = 2 * req.k_budget * _peak_floats(req.plan, fused=fused)[0]
    max_chunk = max(1, min(EVAL_BUDGET_FLOATS // max(1, per_sample), EVAL_CACHE_FLOATS // max(1, stacked)))
    n_chunks = math.ceil(req.n_eval_max / max_chunk)
    return math.ceil(req.n_eval_max / n_chunks)


def make_eval_fn(req: CompileRequest, chunk: int) -> Callable[..., tuple[tf.Tensor, tf.Tensor]]:
    """``eval_fn(x, y, mask, weights) -> (loss sums, hit counts)`` per replica, over one chunk."""
    plan, kind, jit_eval = req.plan, req.kind, req.jit_eval
    loss_fn = per_sample_loss(req.loss)

    def evaluate(
        x: tf.Tensor, y: tf.Tensor, mask: tf.Tensor, w: list[tf.Tensor]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        out, _ = plan.forward(w, x, shared_input=True, training=False, fused_rnn=not jit_eval)
        yk = tf.broadcast_to(y[None], tf.concat([tf.shape(w[0])[:1], tf.shape(y)], 0))
        per = tf.cast(loss_fn(yk, out), tf.float64)  # [K, chunk]
        maskf = tf.cast(mask, tf.float64)[None, :]
        loss_sum = tf.reduce_sum(per * maskf, axis=1)
        hit = hits(kind, yk, out, req.loss)
        return loss_sum, tf.reduce_sum(tf.cast(hit, tf.float64) * maskf, axis=1)

    signature = [
        tf.TensorSpec((chunk, *req.x_spec.shape[1:]), tf.float32),
        tf.TensorSpec((chunk, *req.y_spec.shape[1:]), req.y_spec.dtype),
        tf.TensorSpec((chunk,), tf.bool),
        req.weight_specs(),
    ]
    # autograph=False: graph code already (see epoch_function.py); converting it cost seconds.
    compiled: Callable[..., tuple[tf.Tensor, tf.Tensor]] = tf.function(
        evaluate, input_signature=signature, jit_compile=jit_eval, autograph=False
    )
    return compiled


@dataclass
class EvalResult:
    """Per replica: loss and accuracy on the training set, and on the validation set if any."""

    loss: list[float]
    acc_: list[float] | None
    val_loss: list[float] | None
    val_acc_: list[float] | None

    def acc(self, i: int) -> float | None:
        return None if self.acc_ is None else self.acc_[i]

    def val_loss_at(self, i: int) -> float | None:
        return None if self.val_loss is None else self.val_loss[i]

    def val_acc(self, i: int) -> float | None:
        return None if self.val_acc_ is None else self.val_acc_[i]


class Evaluator:
    """Evaluates one pack's weights on the workload's sets (chunks made once per pack)."""

    def __init__(self, compiled: CompiledPack, data: WorkloadData, stats: PackStats) -> None:
        self.compiled = compiled
        self.data = data
        self.stats = stats
        self.train_chunks = self._chunks(data.x, data.y)
        self.val_chunks = self._chunks(data.x_val, data.y_val) if data.x_val is not None else None

    def _chunks(self, x: tf.Tensor | None, y: tf.Tensor | None) -> list[_Chunk]:
        assert x is not None and y is not None
        c = self.compiled.eval_chunk
        n = int(x.shape[0])
        xs, ys = x.numpy(), y.numpy()
        out = []
        for start in range(0, n, c):
            real = min(c, n - start)
            xc, yc = xs[start : start + real], ys[start : start + real]
            if real < c:
                xc = np.concatenate([xc, np.zeros((c - real, *xc.shape[1:]), xc.dtype)])
                yc = np.concatenate([yc, np.zeros((c - real, *yc.shape[1:]), yc.dtype)])
            mask = np.arange(c) < real
            out.append((tf.constant(xc), tf.constant(yc), tf.constant(mask), real))
        return out

    def _run(self, chunks: list[_Chunk], w: list[tf.Tensor]) -> tuple[list[float], list[float] | None]:
        loss = acc = None
        n = 0
        for xc, yc, mc, real in chunks:
            t = time.perf_counter()
            ls, hits = self.compiled.eval_fn(xc, yc, mc, w)
            ls, hits = ls.numpy(), hits.numpy()
            dt = time.perf_counter() - t
            if self.compiled.eval_compiled:
                self.stats.eval_s += dt
            else:
                self.compiled.eval_compiled = True
                self.stats.compile_s += dt
                self.stats.compiles += 1
            loss = ls if loss is None else loss + ls
            acc = hits if acc is None else acc + hits
            n += real
        assert loss is not None and acc is not None
        acc_out = None if self.data.kind == "regression" else [float(a) / n for a in acc]
        return [float(x) / n for x in loss], acc_out

    def run(self, w: list[tf.Tensor]) -> EvalResult:
        loss, acc = self._run(self.train_chunks, w)
        if self.val_chunks is None:
            return EvalResult(loss, acc, None, None)
        vl, va = self._run(self.val_chunks, w)
        return EvalResult(loss, acc, vl, va)
